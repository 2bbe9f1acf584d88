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
	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/pub/graph"
	"github.com/oshirase/oshirase/pub/internal/config"
	"github.com/oshirase/oshirase/pub/internal/publisher"
	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/service/httpserve"
	"github.com/oshirase/oshirase/service/logging"
	"github.com/oshirase/oshirase/service/metrics"
)

// Run serves until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	opt := *cfg.Redis
	opt.ClientName = "oshirase-pub"
	rdb := redis.NewClient(&opt)
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
	pubr := publisher.New(publisher.Config{Bus: b, MaxTextBytes: cfg.MaxTextBytes, Timeout: cfg.PublishTimeout})
	origins := httpserve.NewOrigins(cfg.AllowedOrigins)
	if origins.Any() {
		log.Warn("ALLOWED_ORIGINS is *: any web page may call pub; list your frontends' origins in production")
	}
	srv, err := httpserve.Listen(fmt.Sprintf(":%d", cfg.Port), newHandler(cfg, origins, authenticate, pubr, rdb, log), log)
	if err != nil {
		return err
	}
	log.Info("pub listening", "addr", srv.Addr().String(), "graphql", "/query", "playground", cfg.Playground, "redis", opt.Addr)

	err = srv.Run(ctx, cfg.ShutdownTimeout)
	if err != nil {
		return err
	}
	log.Info("pub stopped")
	return nil
}

func newHandler(cfg config.Config, origins httpserve.Origins, authenticate httpserve.Authenticator, pubr *publisher.Publisher, rdb *redis.Client, log *slog.Logger) http.Handler {
	gql := gqlserve.NewGraphQL(graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Publisher: pubr}}), cfg.Introspection, log)

	api := origins.Guard(httpserve.RequireCredentials(authenticate, gqlserve.LimitBody(int64(cfg.MaxBodyBytes), gql)))
	mux := http.NewServeMux()
	mux.Handle("/query", api)
	mux.Handle("/graphql", api)
	if cfg.Playground {
		mux.Handle("GET /{$}", playground.Handler("oshirase pub", "/query"))
	}
	metrics := metrics.New()
	metrics.CounterFunc("oshirase_pub_published_total", "Notices published on Redis.", pubr.Published.Load)
	metrics.CounterFunc("oshirase_pub_delivered_total", "Live subscriptions that received a published notice.", pubr.Delivered.Load)
	metrics.CounterFunc("oshirase_pub_failed_total", "Publishes Redis did not take in time.", pubr.Failed.Load)
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	var notReadyLog logging.Throttle
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		if err := rdb.Ping(ctx).Err(); err != nil {
			if ok, held := notReadyLog.Allow(); ok {
				log.Warn("not ready: redis did not answer PING", "err", err, "timeout", ReadyTimeout, "not_logged_since_last", held)
			}
			http.Error(w, "not ready: redis unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// ReadyTimeout bounds /readyz's PING: a Redis that does not answer in time
// makes pub not ready (503).
const ReadyTimeout = time.Second
