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

// Complexity is what fields cost under MAX_QUERY_COMPLEXITY where gqlgen's
// default (1, plus what the field selects) undercounts: a page of
// notifications costs what it selects once for every notice it may hold
// (pages.PageSize), so a request cannot multiply the notices it reads by
// aliasing the list.
func Complexity(pages *recent.Lister) ComplexityRoot {
	var c ComplexityRoot
	c.Query.Notifications = func(childComplexity int, _ string, first *int64, _ *string) int {
		return max(1, pages.PageSize(first)) * childComplexity
	}
	return c
}
