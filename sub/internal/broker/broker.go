// Package broker connects a sub instance to Redis Pub/Sub. It owns the one
// Pub/Sub connection of the instance, keeps Redis subscribed to exactly the
// channels that have local subscribers, and records how many local
// subscriptions read each channel so that pub can answer receivedUsers. It
// knows nothing about WebSockets or GraphQL: messages go up through a
// handler.
package broker

import (
	"context"
	"fmt"

	"github.com/oshirase/oshirase/wire"
	"github.com/oshirase/oshirase/wire/service"
)

// Broker is what the hub needs from the message bus.
type Broker interface {
	// Subscribe records one more local subscription to each of chs, all
	// at once. It returns once messages published to any of them from then
	// on will reach the handler and the subscription is counted on every
	// one, or with an error (and nothing recorded).
	Subscribe(ctx context.Context, chs []wire.Channel) error
	// Unsubscribe records that one local subscription to each of chs has
	// ended.
	Unsubscribe(chs []wire.Channel)
}

// Handler receives every message published to a subscribed channel. It is
// called from one goroutine, in the order Redis delivered the messages, and
// must not block.
type Handler func(ch wire.Channel, payload []byte)

// ErrUnavailable is wrapped when Redis cannot be reached in time.
var ErrUnavailable = fmt.Errorf("broker: redis: %w", service.ErrUnavailable)

var _ Broker = (*Redis)(nil)
