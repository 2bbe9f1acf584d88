// Package graph is sub's GraphQL layer: the schema, gqlgen's generated
// executor, and resolvers that only translate between GraphQL and the hub
// (subscriptions) or the recent list (the notifications query).
package graph

//go:generate go tool gqlgen generate

import (
	"context"

	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/sub/internal/recent"
	"github.com/oshirase/oshirase/wire"
)

// Audience decides which channels a subscriber may read: the access
// policy, kept out of the resolvers.
type Audience interface {
	Channels(ctx context.Context, userName string) ([]wire.Channel, error)
}

// Resolver holds the resolvers' dependencies.
type Resolver struct {
	Hub      *hub.Hub
	Audience Audience
	// Recent lists recent notices (the notifications query).
	Recent *recent.Lister
	// OnDrop is called when the hub drops a subscription (it overflowed);
	// it closes the subscriber's connection with the reason.
	OnDrop func(ctx context.Context, reason error)
}
