// Package server assembles sub's HTTP surface: the GraphQL endpoint
// (WebSocket and SSE streams served by the transport, POST by gqlgen), the
// Playground, health, readiness and metrics.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/playground"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/service/httpserve"
	"github.com/oshirase/oshirase/service/metrics"
	"github.com/oshirase/oshirase/sub/graph"
	"github.com/oshirase/oshirase/sub/internal/demo"
	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/sub/internal/limit"
	"github.com/oshirase/oshirase/sub/internal/recent"
	"github.com/oshirase/oshirase/sub/internal/transport"
	"github.com/oshirase/oshirase/wire"
)

// Config configures the handler.
type Config struct {
	Origins       httpserve.Origins
	KeepAlive     time.Duration // legacy "ka", graphql-transport-ws ping and SSE ping interval
	MissingPongOk bool          // keep graphql-transport-ws peers that answer no ping
	InitTimeout   time.Duration // how long a connection may wait before connection_init
	ReadLimit     int64         // largest client message or SSE request body, bytes
	WriteTimeout  time.Duration // a write blocked longer cuts the peer off
	WriteQueue    int           // bytes that may wait for one connection
	QueueSize     int           // notices that may wait for one subscription
	Playground    bool
	Introspection bool
	// Limits bound GraphQL requests (body, document, complexity) on
	// every transport and count what they refuse. Required.
	Limits *gqlserve.Limits
	// Verifier checks tokens in AUTH_MODE=jwt; nil trusts clients (none).
	Verifier *auth.Verifier
	// AuthCookie names a cookie that may carry the token ("" = none).
	AuthCookie string
	// MaxSubscriptions bounds the operations of one WebSocket (0: none).
	MaxSubscriptions int
}

// Deps are the parts the handler serves.
type Deps struct {
	Hub    *hub.Hub
	Recent *recent.Lister
	// History gives subscriptions their cursors and replays what a
	// resuming subscriber missed.
	History  bus.History
	Audience graph.Audience
	Ready    func() error // nil when ready to serve
	Metrics  *metrics.Registry
	// DeliveryLag and QueueBytes observe the transport's writes
	// (transport.Config); nil: not observed.
	DeliveryLag, QueueBytes metrics.Observer
	Logger                  *slog.Logger
	// Limits admits streams (nil: no connection limits).
	Limits *limit.Limits
}

// Server is sub's HTTP handler and the stream engine behind it.
type Server struct {
	http.Handler
	// Transport serves the streams; close its connections at shutdown.
	Transport *transport.Server
	// Notifications renders notices (Executions counts them).
	Notifications *graph.Notifications
}

// New returns sub's HTTP handler. Close the Transport when done.
func New(cfg Config, d Deps) *Server {
	resolver := &graph.Resolver{Audience: d.Audience, Recent: d.Recent}
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: resolver, Complexity: graph.Complexity(d.Recent)})
	notifications := graph.NewNotifications(schema, resolver, gqlserve.PresentError(d.Logger), gqlserve.Recover(d.Logger))
	tcfg := transport.Config{
		Schema:          schema,
		Exec:            gqlserve.NewExecutor(schema, cfg.Limits, cfg.Introspection, d.Logger),
		Streams:         streams{notifications},
		Hub:             d.Hub,
		History:         d.History,
		CursorHole:      notifications.CursorHole(),
		KeepAlive:       cfg.KeepAlive,
		MissingPongOk:   cfg.MissingPongOk,
		InitTimeout:     cfg.InitTimeout,
		ReadLimit:       cfg.ReadLimit,
		TooLarge:        cfg.Limits.RefuseBody,
		WriteTimeout:    cfg.WriteTimeout,
		WriteQueueBytes: cfg.WriteQueue,
		QueueSize:       cfg.QueueSize,
		Logger:          d.Logger,
		DeliveryLag:     d.DeliveryLag,
		QueueBytes:      d.QueueBytes,

		MaxSubscriptions: cfg.MaxSubscriptions,
	}
	var authn authenticator
	if cfg.Verifier != nil {
		authn = authenticator{v: cfg.Verifier, cookie: cfg.AuthCookie}
		tcfg.ConnContext = connContext
		tcfg.Init = authn.init
		tcfg.Expiry = expiry
	}
	if d.Limits != nil {
		admitLimited(&tcfg, d.Limits, authn)
	}
	ts := transport.New(tcfg)
	gql := gqlserve.NewGraphQL(schema, cfg.Limits, cfg.Introspection, d.Logger)

	mux := http.NewServeMux()
	api := ts.Handler(cfg.Limits.LimitBody(gql))
	if cfg.Verifier != nil {
		api = authn.keepRequestToken(httpserve.RequireCredentials(authn.http, api))
	}
	mux.Handle("/graphql", logRefused(d.Logger, cfg.Origins.Guard(api)))
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
	return &Server{Handler: mux, Transport: ts, Notifications: notifications}
}

// streams adapts graph.Notifications to the transport.
type streams struct{ n *graph.Notifications }

func (s streams) Open(ctx context.Context, opCtx *graphql.OperationContext, field graphql.CollectedField) ([]wire.Channel, transport.Shape, *string, error) {
	chs, shape, after, err := s.n.Open(ctx, opCtx, field)
	if err != nil {
		return nil, nil, nil, err
	}
	return chs, shape, after, nil
}
