// Package app wires sub together: Redis, bus, hub, HTTP server. Run is
// the whole life of the service; main only reads the configuration and
// waits for a signal.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/envconf"
	"github.com/oshirase/oshirase/service/httpserve"
	"github.com/oshirase/oshirase/service/metrics"
	"github.com/oshirase/oshirase/sub/graph"
	"github.com/oshirase/oshirase/sub/internal/config"
	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/sub/internal/recent"
	"github.com/oshirase/oshirase/sub/internal/server"
	"github.com/oshirase/oshirase/sub/internal/transport"
	"github.com/oshirase/oshirase/wire"
)

// Run serves until ctx ends, then shuts down gracefully: stop accepting,
// tell WebSocket clients to reconnect elsewhere, end subscriptions, remove
// this instance's counts, close Redis.
//
// The order matters to clients: every WebSocket is closed with 1001 before
// the hub ends any subscription, and no subscription is completed: a
// graphql-ws client reconnects and resubscribes what the server did not
// complete.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	opt := *cfg.Redis
	opt.PoolSize = 4 // counts only; messages use the one Pub/Sub connection
	opt.ClientName = "oshirase-sub"
	rdb := redis.NewClient(&opt)
	defer rdb.Close()

	metrics := metrics.New()
	var h *hub.Hub
	b, err := bus.NewRedis(bus.Config{
		Client:   rdb,
		Handler:  func(ch wire.Channel, p []byte) { h.Dispatch(ch, p) },
		CountTTL: cfg.CountTTL,
		// sub only reads the history; the settings say whether there is
		// one, and give the epochs it creates pub's lifetime.
		HistorySize: cfg.HistorySize,
		HistoryTTL:  cfg.HistoryTTL,
		Logger:      log,
	})
	if err != nil {
		return err
	}
	h = hub.New(hub.Config{Bus: b, SubscribeTimeout: cfg.SubscribeWait, Logger: log})

	var verifier *auth.Verifier
	var audience graph.Audience = server.TrustingAudience{}
	if cfg.AuthMode == envconf.AuthJWT {
		verifier, err = auth.NewVerifier(ctx, cfg.JWT)
		if err != nil {
			return fmt.Errorf("AUTH_MODE=jwt: %w", err)
		}
		defer verifier.Close()
		audience = server.TokenAudience{}
		log.Info("AUTH_MODE=jwt: subscribers are identified by verified tokens")
	} else {
		log.Warn("AUTH_MODE=none: userName is trusted from the client, so anyone can read anyone's notices; use AUTH_MODE=jwt in production")
	}
	origins := httpserve.NewOrigins(cfg.AllowedOrigins)
	if origins.Any() {
		log.Warn("ALLOWED_ORIGINS is *: any web page may connect; list your frontends' origins in production")
	}
	handler := server.New(server.Config{
		Origins:       origins,
		KeepAlive:     cfg.KeepAlive,
		MissingPongOk: cfg.MissingPongOk,
		InitTimeout:   cfg.InitTimeout,
		ReadLimit:     int64(cfg.ReadLimit),
		WriteTimeout:  cfg.WriteTimeout,
		WriteQueue:    cfg.WriteQueue,
		QueueSize:     cfg.QueueSize,
		Playground:    cfg.Playground,
		Introspection: cfg.Introspection,
		Verifier:      verifier,
		AuthCookie:    cfg.AuthCookie,
	}, server.Deps{
		Hub:      h,
		Recent:   recent.New(recent.Config{History: b, Logger: log}),
		History:  b,
		Audience: audience,
		Ready: func() error {
			if !b.Healthy() {
				return errors.New("redis pub/sub connection is down")
			}
			return nil
		},
		Metrics: metrics,
		Logger:  log,
	})
	ts := handler.Transport
	defer ts.Close()
	registerMetrics(metrics, h, b, handler)
	srv, err := httpserve.Listen(fmt.Sprintf(":%d", cfg.Port), handler, log)
	if err != nil {
		return err
	}
	// Clients reconnect on 1001 and resubscribe: no subscription is completed.
	srv.RegisterOnShutdown(func() { ts.CloseAll(transport.CloseGoingAway, "server shutting down; reconnect") })
	log.Info("sub listening", "addr", srv.Addr().String(), "graphql", "/graphql", "playground", cfg.Playground, "redis", opt.Addr)

	err = srv.Run(ctx, cfg.ShutdownTimeout)
	if !ts.Drain(cfg.ShutdownTimeout) {
		log.Warn("connections still open after SHUTDOWN_TIMEOUT; closing them")
	}
	h.Close()
	if cerr := b.Close(); cerr != nil && !errors.Is(cerr, redis.ErrClosed) {
		log.Warn("closing bus", "err", cerr)
	}
	if err != nil {
		return err
	}
	log.Info("sub stopped")
	return nil
}

func registerMetrics(m *metrics.Registry, h *hub.Hub, b *bus.Redis, srv *server.Server) {
	ts, n := srv.Transport, srv.Notifications
	m.GaugeFunc("oshirase_sub_subscriptions", "Live subscriptions.", func() int64 { return h.Stats().Subscriptions })
	m.GaugeFunc("oshirase_sub_connections", "Open WebSocket connections and SSE streams.", func() int64 { return ts.Stats().Open })
	m.GaugeFunc("oshirase_sub_channels", "Redis channels with local subscribers.", func() int64 { return int64(b.Channels()) })
	m.GaugeFunc("oshirase_sub_shapes", "Distinct selection shapes of live subscriptions.", func() int64 { return int64(n.Shapes()) })
	m.CounterFunc("oshirase_sub_messages_received_total", "Messages received from Redis.", func() int64 { return h.Stats().Received })
	m.CounterFunc("oshirase_sub_deliveries_total", "Notices queued to subscriptions.", func() int64 { return h.Stats().Delivered })
	m.CounterFunc("oshirase_sub_executions_total", "Notification selection sets executed: one per notice and shape on its channel.", n.Executions)
	m.CounterFunc("oshirase_sub_frames_total", "Frames written to WebSockets and SSE streams.", func() int64 { return ts.Stats().Frames })
	m.CounterFunc("oshirase_sub_writes_total", "Socket writes made for them (frames queued together share one).", func() int64 { return ts.Stats().Writes })
	m.CounterFunc("oshirase_sub_malformed_total", "Messages from Redis that failed to decode and were skipped.", func() int64 { return h.Stats().Malformed })
	m.CounterFunc("oshirase_sub_slow_dropped_total", "Connections and SSE streams closed as slow consumers: their write queue overflowed, or a write blocked past WRITE_TIMEOUT.", func() int64 { return ts.Stats().SlowClosed })
	m.CounterFunc("oshirase_sub_write_timeouts_total", "Connections cut off because a write blocked past WRITE_TIMEOUT.", func() int64 { return ts.Stats().WriteTimeouts })
	m.CounterFunc("oshirase_sub_redis_sync_failures_total", "Rounds of SUBSCRIBE/count updates that failed and were retried.", b.SyncFailures)
	m.GaugeFunc("go_goroutines", "Goroutines that currently exist.", func() int64 { return int64(runtime.NumGoroutine()) })
	m.GaugeFunc("oshirase_sub_redis_up", "1 when the Redis Pub/Sub connection is up.", func() int64 {
		if b.Healthy() {
			return 1
		}
		return 0
	})
}
