// Package bus is oshirase's Redis protocol, both halves of it, in one place.
// pub publishes a notice on its channel and learns, in the same atomic step,
// how many live subscriptions received it. sub subscribes the channels its
// local subscribers read (reference-counted, batched, re-subscribed after a
// reconnect), keeps Redis's count of those subscriptions current, and hands
// every message up through a Handler. What the channels are called and how a
// notice is encoded is the wire package's; how they travel through Redis is
// this package's: its scripts are lua/*.lua, embedded.
//
// Publisher and Subscriber are the two halves; Redis implements both.
package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/wire"
)

// Publisher puts notices on the bus.
type Publisher interface {
	// Publish puts payload (an encoded wire.Message) on ch and answers how
	// many live subscriptions, over every sub instance, read ch when it went
	// out (0: nobody was listening; the notice is gone).
	Publish(ctx context.Context, ch wire.Channel, payload []byte) (receivers int, err error)
}

// Subscriber keeps this instance subscribed to the channels its local
// subscriptions read.
type Subscriber interface {
	// Subscribe records one more local subscription to each of chs, all at
	// once. It returns once messages published to any of them from then on
	// reach the Handler and the subscription is counted on every one, or
	// with an error (and nothing recorded).
	Subscribe(ctx context.Context, chs []wire.Channel) error
	// Unsubscribe records that one local subscription to each of chs has
	// ended.
	Unsubscribe(chs []wire.Channel)
}

// Handler receives every message published to a subscribed channel. It is
// called from one goroutine, in the order Redis delivered the messages, and
// must not block.
type Handler func(ch wire.Channel, payload []byte)

var (
	// ErrUnavailable is wrapped when Redis cannot be reached in time.
	ErrUnavailable = fmt.Errorf("bus: redis: %w", errkind.ErrUnavailable)
	// ErrClosed is returned once the bus is closed.
	ErrClosed = errors.New("bus: closed")
	// ErrPublishOnly is returned by Subscribe on a bus made without a Handler.
	ErrPublishOnly = errors.New("bus: publish-only: no Handler configured")
)

var (
	_ Publisher  = (*Redis)(nil)
	_ Subscriber = (*Redis)(nil)
)
