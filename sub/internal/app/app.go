// Package app wires sub together: Redis, bus, hub, HTTP server. Run is
// the whole life of the service; main only reads the configuration and
// waits for a signal.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/envconf"
	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/service/httpserve"
	"github.com/oshirase/oshirase/service/metrics"
	"github.com/oshirase/oshirase/sub/graph"
	"github.com/oshirase/oshirase/sub/internal/config"
	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/sub/internal/limit"
	"github.com/oshirase/oshirase/sub/internal/recent"
	"github.com/oshirase/oshirase/sub/internal/server"
	"github.com/oshirase/oshirase/sub/internal/transport"
	"github.com/oshirase/oshirase/wire"
)

// Run serves until ctx ends, then shuts down gracefully within
// SHUTDOWN_TIMEOUT (see drain): /readyz turns 503, then after DRAIN_DELAY
// stop accepting and tell the clients to reconnect elsewhere, spread over
// DRAIN_WINDOW; end subscriptions, remove this instance's counts, close
// Redis.
//
// The order matters to clients: every WebSocket is closed with 1001 before
// the hub ends any subscription, and no subscription is completed: a
// graphql-ws client reconnects and resubscribes what the server did not
// complete.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	// Counts and probes only; messages use the Pub/Sub connections.
	rdb := cfg.RedisClient("oshirase-sub", 4)
	defer rdb.Close()

	metrics := metrics.New()
	hist := newHistograms(metrics)
	var h *hub.Hub
	b, err := bus.NewRedis(bus.Config{
		Client:   rdb,
		Handler:  func(ch wire.Channel, p []byte) { h.Dispatch(ch, p) },
		CountTTL: cfg.CountTTL,
		// Every Pub/Sub connection proves it delivers on this interval.
		ProbeInterval: cfg.RedisProbeInterval,
		// sub only reads the history; the settings say whether there is
		// one, and give the epochs it creates pub's lifetime.
		HistorySize: cfg.HistorySize,
		HistoryTTL:  cfg.HistoryTTL,
		Logger:      log,
	})
	if err != nil {
		return err
	}
	h = hub.New(hub.Config{Bus: b, SubscribeTimeout: cfg.SubscribeWait, Logger: log, FanOut: hist.fanOut})

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
	limits := limit.New(limit.Config{MaxConnections: cfg.MaxConnections, MaxPerUser: cfg.MaxPerUser,
		ConnectRate: cfg.ConnectRate, ConnectBurst: cfg.ConnectBurst, Proxies: cfg.TrustedProxies, Logger: log})
	limits.Register(metrics)
	gqlLimits := gqlserve.NewLimits(cfg.Limits(cfg.ReadLimit, log))
	gqlLimits.Register(metrics, "sub")
	drain := &drainState{} // begun on the signal: /readyz answers 503
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
		Limits:        gqlLimits,
		Verifier:      verifier,
		AuthCookie:    cfg.AuthCookie,

		MaxSubscriptions: cfg.MaxSubscriptions,
	}, server.Deps{
		Hub:      h,
		Recent:   recent.New(recent.Config{History: b, Logger: log}),
		History:  b,
		Audience: audience,
		// Ready: not draining, every Pub/Sub connection up and its last
		// delivery probe back (the reason is /readyz's 503 body).
		Ready: func() error {
			if err := drain.err(); err != nil {
				return err
			}
			return b.Ready(context.Background())
		},
		Metrics:     metrics,
		DeliveryLag: hist.lag,
		QueueBytes:  hist.queueBytes,
		Logger:      log,
		Limits:      limits,
	})
	ts := handler.Transport
	defer ts.Close()
	registerMetrics(metrics, h, b, handler)
	srv, err := httpserve.Listen(fmt.Sprintf(":%d", cfg.Port), handler, log)
	if err != nil {
		return err
	}
	log.Info("sub listening", "addr", srv.Addr().String(), "graphql", "/graphql", "playground", cfg.Playground, "redis", cfg.RedisTarget())

	err = serveAndDrain(ctx, srv, ts, cfg, drain, log)
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

// histograms are sub's measurements on the delivery path: one observe each.
type histograms struct{ fanOut, lag, queueBytes metrics.Observer }

func newHistograms(m *metrics.Registry) histograms {
	return histograms{
		fanOut: m.Histogram("oshirase_sub_fanout_duration_seconds",
			"Time to deliver one notice from Redis to the write queues of every local subscription of its channel (decode, render per shape, queue).", metrics.FastBuckets),
		lag: m.Histogram("oshirase_sub_delivery_lag_seconds",
			"Time from a live notice's publish time (stamped by pub, in milliseconds) to the socket write that carries it, per notice written.", metrics.LatencyBuckets),
		queueBytes: m.Histogram("oshirase_sub_write_queue_bytes",
			"Bytes queued on a connection (WebSocket or SSE stream) at each write to it.", metrics.ByteBuckets),
	}
}

func registerMetrics(m *metrics.Registry, h *hub.Hub, b *bus.Redis, srv *server.Server) {
	ts, n := srv.Transport, srv.Notifications
	m.GaugeFunc("oshirase_sub_subscriptions", "Live subscriptions.", func() int64 { return h.Stats().Subscriptions })
	m.GaugeFunc("oshirase_sub_connections", "Open WebSocket connections and SSE streams.", func() int64 { return ts.Stats().Open })
	m.GaugeFunc("oshirase_sub_channels", "Redis channels with local subscribers.", func() int64 { return int64(b.Channels()) })
	m.GaugeFunc("oshirase_sub_shapes", "Distinct selection shapes of live subscriptions.", func() int64 { return int64(n.Shapes()) })
	m.CounterFunc("oshirase_sub_messages_received_total", "Messages received from Redis.", func() int64 { return h.Stats().Received })
	m.CounterFunc("oshirase_sub_deliveries_total", "Notices queued to subscriptions.", func() int64 { return h.Stats().Delivered })
	m.CounterFunc("oshirase_sub_executions_total", "Notification selection sets rendered (written directly, or executed): one per notice and shape on its channel.", n.Executions)
	m.CounterFunc("oshirase_sub_frames_total", "Frames written to WebSockets and SSE streams.", func() int64 { return ts.Stats().Frames })
	m.CounterFunc("oshirase_sub_writes_total", "Socket writes made for them (frames queued together share one).", func() int64 { return ts.Stats().Writes })
	m.CounterFunc("oshirase_sub_malformed_total", "Messages from Redis that failed to decode and were skipped.", func() int64 { return h.Stats().Malformed })
	m.CounterFunc("oshirase_sub_slow_dropped_total", "Connections and SSE streams closed as slow consumers: their write queue overflowed, or a write blocked past WRITE_TIMEOUT.", func() int64 { return ts.Stats().SlowClosed })
	m.CounterFunc("oshirase_sub_write_timeouts_total", "Connections cut off because a write blocked past WRITE_TIMEOUT.", func() int64 { return ts.Stats().WriteTimeouts })
	m.CounterFunc("oshirase_sub_subscriptions_refused_total", "Subscriptions refused over MAX_SUBSCRIPTIONS_PER_CONNECTION (TOO_MANY_SUBSCRIPTIONS).", func() int64 { return ts.Stats().TooManySubscriptions })
	m.CounterFunc("oshirase_sub_redis_sync_failures_total", "Rounds of SUBSCRIBE/count updates that failed and were retried.", b.SyncFailures)
	m.CounterFunc("oshirase_sub_redis_replaced_total", "Pub/Sub connections replaced: a delivery probe did not come back in time, or (on a cluster) the connection failed.", b.Replaced)
	fns := map[string]func() int64{}
	for _, r := range transport.DisconnectReasons() {
		fns[r] = func() int64 { return ts.Disconnects(r) }
	}
	m.LabeledCounterFuncs("oshirase_sub_disconnects_total", "Connections and SSE streams closed, by reason.", "reason", fns)
	m.GaugeFunc("oshirase_sub_redis_up", "1 while every Redis Pub/Sub connection is up and its last delivery probe came back (what /readyz reads, besides a drain).", func() int64 {
		if b.Ready(context.Background()) == nil { // no I/O: the connections' last known state
			return 1
		}
		return 0
	})
}
