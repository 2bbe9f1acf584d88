// Package app wires pub together: Redis, publisher, HTTP server. Run is the
// whole life of the service; main only reads the configuration and waits
// for a signal.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/oshirase/oshirase/bus"

	"github.com/99designs/gqlgen/graphql/playground"

	"github.com/oshirase/oshirase/pub/graph"
	"github.com/oshirase/oshirase/pub/internal/config"
	"github.com/oshirase/oshirase/pub/internal/publisher"
	"github.com/oshirase/oshirase/pub/internal/throttle"
	"github.com/oshirase/oshirase/service/envconf"
	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/service/httpserve"
	"github.com/oshirase/oshirase/service/logging"
	"github.com/oshirase/oshirase/service/metrics"
)

// Run serves until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	rdb := cfg.RedisClient("oshirase-pub", 0)
	defer rdb.Close()

	authenticate, closeAuth, err := newAuthenticator(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAuth()
	b, err := bus.NewRedis(bus.Config{Client: rdb, Logger: log, HistorySize: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL})
	if err != nil {
		return err
	}
	reg := metrics.New()
	pubr := publisher.New(publisher.Config{
		Bus: b, MaxTextBytes: cfg.MaxTextBytes, MaxBatch: cfg.MaxBatch,
		Timeout: cfg.PublishTimeout, IdempotencyTTL: cfg.IdempotencyTTL,
		Duration: reg.Histogram("oshirase_pub_publish_duration_seconds",
			"Time Redis took to take one publish or one publishBatch (retries included; failed ones too, up to PUBLISH_TIMEOUT).", metrics.LatencyBuckets),
	})
	defer pubr.Close() // after the server stopped: no request is left to publish
	registerMetrics(reg, pubr)
	origins := httpserve.NewOrigins(cfg.AllowedOrigins)
	if origins.Any() {
		log.Warn("ALLOWED_ORIGINS is *: any web page may call pub; list your frontends' origins in production")
	}
	srv, err := httpserve.Listen(fmt.Sprintf(":%d", cfg.Port), newHandler(cfg, origins, authenticate, pubr, b, reg, log), log)
	if err != nil {
		return err
	}
	log.Info("pub listening", "addr", srv.Addr().String(), "graphql", "/query", "playground", cfg.Playground, "redis", cfg.RedisTarget())

	err = srv.Run(ctx, cfg.ShutdownTimeout)
	if err != nil {
		return err
	}
	log.Info("pub stopped")
	return nil
}

func registerMetrics(m *metrics.Registry, pubr *publisher.Publisher) {
	m.CounterFunc("oshirase_pub_published_total", "Notices published on Redis.", pubr.Published.Load)
	m.CounterFunc("oshirase_pub_delivered_total", "Live subscriptions that received a published notice.", pubr.Delivered.Load)
	m.CounterFunc("oshirase_pub_failed_total", "Publishes Redis did not take in time.", pubr.Failed.Load)
	m.CounterFunc("oshirase_pub_repeats_total", "Retries answered from an idempotency key, publishing nothing.", pubr.Repeats.Load)
}

func newHandler(cfg config.Config, origins httpserve.Origins, authenticate httpserve.Authenticator, pubr *publisher.Publisher, b *bus.Redis, metrics *metrics.Registry, log *slog.Logger) http.Handler {
	limits := gqlserve.NewLimits(cfg.Limits(cfg.MaxBodyBytes, log))
	limits.Register(metrics, "pub")
	resolver := &graph.Resolver{Publisher: pubr, Log: log}
	gql := gqlserve.NewGraphQL(graph.NewExecutableSchema(graph.Config{Resolvers: resolver}), limits, cfg.Introspection, log)
	var prepared *graph.Prepared
	if cfg.PublishRate == 0 {
		// Before BatchRenderer: the first extension is the outermost, and
		// Prepared learns publishBatch's plans from what gqlgen runs.
		prepared = graph.NewPrepared(resolver, log)
		gql.Use(prepared)
	}
	gql.Use(graph.BatchRenderer{Resolvers: resolver})

	var limited http.Handler
	var th *throttle.Throttle
	if cfg.PublishRate > 0 {
		// Every publish takes its tokens in gqlgen's operation context:
		// no shortcut around it.
		th = throttle.New(throttle.Config{Rate: cfg.PublishRate, Burst: cfg.PublishBurst,
			Anonymous: cfg.AuthMode != envconf.AuthJWT, Proxies: cfg.TrustedProxies, Logger: log})
		gql.Use(th)
		limited = th.Middleware(limits.LimitBody(gql))
	} else {
		limited = limits.LimitBody(gqlserve.Shortcut(gql, prepared.Serve))
	}
	api := origins.Guard(httpserve.RequireCredentials(authenticate, limited))
	mux := http.NewServeMux()
	mux.Handle("/query", api)
	mux.Handle("/graphql", api)
	if cfg.Playground {
		mux.Handle("GET /{$}", playground.Handler("oshirase pub", "/query"))
	}
	metrics.CounterFunc("oshirase_pub_rate_limited_total", "Requests refused with 429 over PUBLISH_RATE.", func() int64 {
		if th == nil {
			return 0
		}
		return th.Refused()
	})
	metrics.CounterFunc("oshirase_pub_prepared_total", "Publish requests (sendNotification, publish, publishBatch) answered from a plan of their document, without gqlgen's executor.", func() int64 {
		if prepared == nil {
			return 0
		}
		return prepared.Served()
	})
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	var notReadyLog logging.Throttle
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		// Redis answers and has the publish script (on a cluster, every
		// master; loaded now when missing).
		if err := b.Ready(ctx); err != nil {
			if ok, held := notReadyLog.Allow(); ok {
				log.Warn("not ready: redis unavailable", "err", err, "timeout", ReadyTimeout, "not_logged_since_last", held)
			}
			http.Error(w, "not ready: redis unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// ReadyTimeout bounds /readyz's check: a Redis that does not answer in time
// makes pub not ready (503).
const ReadyTimeout = time.Second
