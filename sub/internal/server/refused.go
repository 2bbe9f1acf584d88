package server

import (
	"log/slog"
	"net/http"
	"strings"
)

// logRefused logs one line for each WebSocket upgrade or SSE request that
// next answers with an error status instead of a stream (an origin not on
// the list, a missing or bad credential, a limit, a broken handshake):
// connections refused before they are open. Other requests pass as they
// are.
func logRefused(log *slog.Logger, next http.Handler) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "transport")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := ""
		switch {
		case r.Header.Get("Upgrade") != "":
			kind = "websocket"
		case r.Method == http.MethodPost && strings.Contains(r.Header.Get("Accept"), "text/event-stream"):
			kind = "sse"
		default:
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status >= http.StatusBadRequest {
			log.Info("connection refused", "status", sw.status, "reason", http.StatusText(sw.status),
				"protocol", kind, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		}
	})
}

// statusWriter remembers the status of the response; Unwrap lets the
// stream take the connection over (http.ResponseController).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
