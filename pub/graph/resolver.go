// Package graph is pub's GraphQL layer: the schema, gqlgen's generated
// executor, and resolvers that only translate between GraphQL and the
// publisher.
package graph

//go:generate go tool gqlgen generate

import (
	"context"

	"github.com/oshirase/oshirase/wire"
)

// Publisher sends one notice to one audience and answers how many live
// subscriptions received it.
type Publisher interface {
	Publish(ctx context.Context, tenant string, scope wire.Scope, to, text string) (received int, msg *wire.Message, err error)
}

// Resolver holds the resolvers' dependencies. The caller's identity is in
// the request context (auth.FromContext), put there by the authenticating
// middleware.
type Resolver struct {
	Publisher Publisher
}
