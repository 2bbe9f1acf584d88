// Package graph is pub's GraphQL layer: the schema, gqlgen's generated
// executor, and resolvers that only translate between GraphQL and the
// publisher.
package graph

//go:generate go tool gqlgen generate

import (
	"context"
	"log/slog"

	"github.com/oshirase/oshirase/pub/internal/publisher"
	"github.com/oshirase/oshirase/wire"
)

// Publisher sends notices to audiences the caller may address and answers
// how many live subscriptions received each.
type Publisher interface {
	Publish(ctx context.Context, credential string, n publisher.Notice) (received int, msg *wire.Message, err error)
	PublishBatch(ctx context.Context, credential string, ns []publisher.Notice) ([]publisher.Result, error)
	// CheckBatch refuses a batch of n inputs, all of them counted, over
	// the most one call takes.
	CheckBatch(n int) error
}

// Resolver holds the resolvers' dependencies. The caller's identity is in
// the request context (auth.FromContext, and access.Credential), put there
// by the authenticating middleware.
type Resolver struct {
	Publisher Publisher
	// Log receives what a batch item's error hides from the client
	// (gqlserve.ErrorFor). Default: slog.Default().
	Log *slog.Logger
}
