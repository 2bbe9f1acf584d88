package service

import (
	"context"
	"errors"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oshirase/oshirase/wire"
	"github.com/oshirase/oshirase/wire/auth"
)

// Errors that components wrap so that the edge can answer them properly.
var (
	// ErrBadInput: the caller sent something unusable; the message says what.
	ErrBadInput = errors.New("bad input")
	// ErrUnavailable: a dependency (Redis) did not answer in time; retry.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrForbidden: the caller is known but may not do this.
	ErrForbidden = errors.New("forbidden")
)

// PresentError turns errors into GraphQL errors at the edge: bad input says
// what was wrong (code BAD_USER_INPUT), a rejected credential or action says
// so (UNAUTHENTICATED, FORBIDDEN), an unavailable dependency says to retry
// (UNAVAILABLE), anything else is logged and answered with a generic message
// (INTERNAL) that leaks nothing.
func PresentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Err == nil {
			return gqlErr // parse and validation errors, already well formed
		}
		e := graphql.DefaultErrorPresenter(ctx, err)
		switch {
		case errors.Is(err, ErrBadInput), errors.Is(err, wire.ErrInvalidName):
			e.Message = err.Error()
			e.Extensions = map[string]any{"code": "BAD_USER_INPUT"}
		case errors.Is(err, auth.ErrUnauthenticated):
			e.Message = err.Error()
			e.Extensions = map[string]any{"code": "UNAUTHENTICATED"}
		case errors.Is(err, ErrForbidden):
			e.Message = err.Error()
			e.Extensions = map[string]any{"code": "FORBIDDEN"}
		case errors.Is(err, ErrUnavailable):
			e.Message = "notification service temporarily unavailable; retry"
			e.Extensions = map[string]any{"code": "UNAVAILABLE"}
			log.Warn("request failed: dependency unavailable", "err", err)
		default:
			log.Error("request failed", "err", err)
			e.Message = "internal error"
			e.Extensions = map[string]any{"code": "INTERNAL"}
		}
		return e
	}
}

// NewGraphQL is the GraphQL handler both services serve: the streaming
// transports first (they must see their requests before POST does), then
// OPTIONS and POST, configured by ConfigureGraphQL.
func NewGraphQL(schema graphql.ExecutableSchema, introspection bool, log *slog.Logger, streaming ...graphql.Transport) *handler.Server {
	gql := handler.New(schema)
	for _, t := range streaming {
		gql.AddTransport(t)
	}
	gql.AddTransport(transport.Options{})
	gql.AddTransport(transport.POST{})
	ConfigureGraphQL(gql, introspection, log)
	return gql
}

// NewExecutor is an executor of schema configured like NewGraphQL's
// handler, for a transport that runs operations itself (sub's streams).
func NewExecutor(schema graphql.ExecutableSchema, introspection bool, log *slog.Logger) *executor.Executor {
	e := executor.New(schema)
	ConfigureGraphQL(e, introspection, log)
	return e
}

// GraphQLSettings is what a handler.Server and an executor.Executor both
// take.
type GraphQLSettings interface {
	SetQueryCache(graphql.Cache[*ast.QueryDocument])
	Use(graphql.HandlerExtension)
	SetErrorPresenter(graphql.ErrorPresenterFunc)
	SetRecoverFunc(graphql.RecoverFunc)
}

// ConfigureGraphQL gives gql the settings every GraphQL endpoint serves
// with: a parsed-query cache, introspection when allowed, errors presented
// by PresentError, and a panic in a resolver logged and answered
// "internal error".
func ConfigureGraphQL(gql GraphQLSettings, introspection bool, log *slog.Logger) {
	gql.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if introspection {
		gql.Use(extension.Introspection{})
	}
	gql.SetErrorPresenter(PresentError(log))
	gql.SetRecoverFunc(Recover(log))
}

// Recover turns a panic in a resolver into an error that says nothing
// more than "internal error" (PresentError codes it INTERNAL).
func Recover(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, v any) error {
		log.Error("panic in resolver", "panic", v)
		return errors.New("internal error")
	}
}
