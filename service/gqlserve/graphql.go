// Package gqlserve sets up the gqlgen handler both services serve and
// turns errors into GraphQL errors with a code at the edge.
package gqlserve

import (
	"context"
	"errors"
	"log/slog"

	"github.com/oshirase/oshirase/service/errkind"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/wire"
)

// PresentError turns errors into GraphQL errors at the edge: bad input says
// what was wrong (code BAD_USER_INPUT), a rejected credential or action says
// so (UNAUTHENTICATED, FORBIDDEN), an unavailable dependency says to retry
// (UNAVAILABLE), an expired cursor says to start afresh (CURSOR_EXPIRED),
// anything else is logged and answered with a generic message
// (INTERNAL) that leaks nothing.
func PresentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Err == nil {
			return gqlErr // parse and validation errors, already well formed
		}
		e := graphql.DefaultErrorPresenter(ctx, err)
		switch {
		case errors.Is(err, errkind.ErrBadInput), errors.Is(err, wire.ErrInvalidName):
			e.Message = err.Error()
			e.Extensions = map[string]any{"code": "BAD_USER_INPUT"}
		case errors.Is(err, auth.ErrUnauthenticated):
			e.Message = err.Error()
			e.Extensions = map[string]any{"code": "UNAUTHENTICATED"}
		case errors.Is(err, errkind.ErrForbidden):
			e.Message = err.Error()
			e.Extensions = map[string]any{"code": "FORBIDDEN"}
		case errors.Is(err, errkind.ErrCursorExpired):
			e.Message = "the cursor is older than the history kept, or from before the history started over; fetch the list again and subscribe without it"
			e.Extensions = map[string]any{"code": "CURSOR_EXPIRED"}
		case errors.Is(err, errkind.ErrUnavailable):
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
// OPTIONS and POST, a parsed-query cache, introspection when allowed, and
// errors presented by PresentError. A panic in a resolver is logged and
// answered "internal error".
func NewGraphQL(schema graphql.ExecutableSchema, introspection bool, log *slog.Logger, streaming ...graphql.Transport) *handler.Server {
	gql := handler.New(schema)
	for _, t := range streaming {
		gql.AddTransport(t)
	}
	gql.AddTransport(transport.Options{})
	gql.AddTransport(transport.POST{})
	gql.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if introspection {
		gql.Use(extension.Introspection{})
	}
	gql.SetErrorPresenter(PresentError(log))
	gql.SetRecoverFunc(func(ctx context.Context, v any) error {
		log.Error("panic in resolver", "panic", v)
		return errors.New("internal error")
	})
	return gql
}
