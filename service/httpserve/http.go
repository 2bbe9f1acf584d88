// Package httpserve is the HTTP edge both services share: a server's
// lifecycle (listen, serve until a signal, shut down gracefully), the
// browser origin allowlist that drives CORS and the WebSocket origin check,
// and the credential check in front of GraphQL.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server is an HTTP server with an explicit start and a graceful stop.
type Server struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
}

// Listen binds addr (":0" picks a free port) and prepares to serve h.
func Listen(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		ln:  ln,
		log: log,
	}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Port is the TCP port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// RegisterOnShutdown runs f when Shutdown starts, e.g. to close hijacked
// WebSocket connections that http.Server no longer tracks.
func (s *Server) RegisterOnShutdown(f func()) { s.srv.RegisterOnShutdown(f) }

// Serve serves until Shutdown; it returns nil after a graceful stop.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Run serves until ctx ends, then shuts down within timeout. It returns
// nil after a graceful stop, or why serving failed.
func (s *Server) Run(ctx context.Context, timeout time.Duration) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.Serve() }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
		s.log.Info("shutting down")
		return s.Shutdown(timeout)
	}
}

// Shutdown stops accepting, waits up to timeout for requests in flight,
// then closes what is left.
func (s *Server) Shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.log.Warn("graceful shutdown timed out; closing remaining connections", "err", err)
		return s.srv.Close()
	}
	return nil
}
