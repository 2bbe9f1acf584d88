// Package graph is sub's GraphQL layer: the schema, gqlgen's generated
// executor, resolvers that only translate between GraphQL and the access
// policy or the recent list (the notifications query), and Notifications, which opens onNotificationReceived streams
// for the transport and executes their selection once per shape.
package graph

//go:generate go tool gqlgen generate

import (
	"context"
	"fmt"

	"github.com/oshirase/oshirase/service/errkind"
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
	Audience Audience
	// Recent lists recent notices (the notifications query).
	Recent *recent.Lister
}

// errStreamOnly answers a subscription sent where no stream can carry it
// (a plain POST): the transport serves subscriptions itself.
var errStreamOnly = fmt.Errorf("%w: subscriptions are served over WebSocket (graphql-transport-ws, graphql-ws) or SSE (Accept: text/event-stream)", errkind.ErrBadInput)
