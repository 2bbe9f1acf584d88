// Package server assembles sub's HTTP surface: the GraphQL endpoint (POST
// and WebSocket), the Playground, health, readiness and metrics.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/service/httpserve"
	"github.com/oshirase/oshirase/service/metrics"
	"github.com/oshirase/oshirase/sub/graph"
	"github.com/oshirase/oshirase/sub/internal/demo"
	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/sub/internal/recent"
	"github.com/oshirase/oshirase/sub/internal/wsconn"
)

// CloseSlowConsumer is the WebSocket close code for a subscriber dropped
// because it stopped reading (RFC 6455 1013, "try again later"): the
// client may reconnect and catch up.
const CloseSlowConsumer = 1013

// Config configures the handler.
type Config struct {
	Origins       httpserve.Origins
	KeepAlive     time.Duration // legacy "ka" and graphql-transport-ws ping interval
	InitTimeout   time.Duration // how long a connection may wait before connection_init
	ReadLimit     int64         // largest client message or request body, bytes
	WriteTimeout  time.Duration // a write blocked longer cuts the peer off
	Playground    bool
	Introspection bool
	// Verifier checks tokens in AUTH_MODE=jwt; nil trusts clients (none).
	Verifier *auth.Verifier
	// AuthCookie names a cookie that may carry the token ("" = none).
	AuthCookie string
}

// Deps are the parts the handler serves.
type Deps struct {
	Hub      *hub.Hub
	Recent   *recent.Lister
	Audience graph.Audience
	Ready    func() error // nil when ready to serve
	Metrics  *metrics.Registry
	Logger   *slog.Logger
	WS       *wsconn.Implementation
}

// New returns sub's HTTP handler.
func New(cfg Config, d Deps) http.Handler {
	resolver := &graph.Resolver{
		Hub:      d.Hub,
		Recent:   d.Recent,
		Audience: d.Audience,
		OnDrop: func(ctx context.Context, reason error) {
			if err := wsconn.Close(ctx, CloseSlowConsumer, reason.Error()); err != nil {
				d.Logger.Debug("dropped subscription had no websocket to close", "err", err)
			}
		},
	}
	var authn authenticator
	var initFunc transport.WebsocketInitFunc
	if cfg.Verifier != nil {
		authn = authenticator{v: cfg.Verifier, cookie: cfg.AuthCookie}
		initFunc = authn.initFunc
	}
	ws := d.WS.Transport(transport.Websocket{
		InitFunc:              initFunc,
		KeepAlivePingInterval: cfg.KeepAlive,
		PingPongInterval:      cfg.KeepAlive,
		InitTimeout:           cfg.InitTimeout,
		PayloadReadLimit:      &cfg.ReadLimit,
		ErrorFunc: func(ctx context.Context, err error) {
			d.Logger.Debug("websocket error", "err", err)
		},
	})
	sse := d.WS.SSE(wsconn.SSE{
		SSE:          transport.SSE{KeepAlivePingInterval: cfg.KeepAlive},
		WriteTimeout: cfg.WriteTimeout,
		ReadLimit:    cfg.ReadLimit,
		Deadline:     credentialExpiry,
	})
	gql := gqlserve.NewGraphQL(graph.NewExecutableSchema(graph.Config{Resolvers: resolver}), cfg.Introspection, d.Logger, ws, sse)

	mux := http.NewServeMux()
	var api http.Handler = d.WS.Middleware(gqlserve.LimitBody(cfg.ReadLimit, gql))
	if cfg.Verifier != nil {
		api = authn.keepRequestToken(httpserve.RequireCredentials(authn.http, api))
	}
	mux.Handle("/graphql", cfg.Origins.Guard(api))
	if cfg.Playground {
		mux.Handle("GET /{$}", playground.Handler("oshirase sub", "/graphql"))
		mux.Handle("GET /demo", demo.Handler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := d.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", d.Metrics)
	return mux
}
