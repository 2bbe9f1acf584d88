package app

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/oshirase/oshirase/service/httpserve"
	"github.com/oshirase/oshirase/sub/internal/config"
	"github.com/oshirase/oshirase/sub/internal/transport"
)

// serveAndDrain serves until ctx ends, then drains within SHUTDOWN_TIMEOUT
// of it: /readyz answers 503 "draining" at once, so that a load balancer
// stops sending new clients here; the server keeps serving for DRAIN_DELAY
// (the time the balancer needs to notice); then it stops accepting and ends
// the open WebSockets (1001, which clients retry on: they reconnect through
// the balancer to another instance and resubscribe, with their last cursor
// if they keep one) and SSE streams (no "complete") spread over
// DRAIN_WINDOW, so that a fleet's clients do not all come back in the same
// second. Requests in flight, and close frames still being written, get
// what is left of SHUTDOWN_TIMEOUT (config makes it at least the drain).
func serveAndDrain(ctx context.Context, srv *httpserve.Server, ts *transport.Server, cfg config.Config, drain *drainState, log *slog.Logger) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	deadline := time.Now().Add(cfg.ShutdownTimeout)
	drain.on.Store(true)
	log.Info("draining: /readyz answers 503; open connections close after DRAIN_DELAY, spread over DRAIN_WINDOW",
		"open", ts.Stats().Open, "drain_delay", cfg.DrainDelay, "drain_window", cfg.DrainWindow, "shutdown_timeout", cfg.ShutdownTimeout)
	select {
	case <-time.After(cfg.DrainDelay):
	case err := <-serveErr:
		return err
	}
	// Clients reconnect on 1001 and resubscribe: no subscription is completed.
	const reason = "server shutting down; reconnect"
	srv.RegisterOnShutdown(func() { ts.CloseAllSpread(transport.CloseGoingAway, reason, cfg.DrainWindow) })
	log.Info("shutting down: closing connections", "open", ts.Stats().Open, "over", cfg.DrainWindow)
	err := srv.Shutdown(time.Until(deadline))
	if !ts.Drain(time.Until(deadline)) {
		log.Warn("connections still open after SHUTDOWN_TIMEOUT; closing them", "open", ts.Stats().Open)
		ts.CloseAll(transport.CloseGoingAway, reason)
		ts.Drain(250 * time.Millisecond) // let the close frames go out
	}
	return err
}

// drainState says whether the drain has begun; /readyz reports it.
type drainState struct{ on atomic.Bool }

var errDraining = errors.New("draining")

// err is errDraining once the drain has begun, else nil.
func (d *drainState) err() error {
	if d.on.Load() {
		return errDraining
	}
	return nil
}
