// Package bus is oshirase's Redis protocol, both halves of it, in one place.
// pub publishes a notice on its channel and learns, in the same atomic step,
// how many live subscriptions received it; the same step appends the notice
// to the channel's history, which sub reads back (History) to list recent
// notices and to replay what a reconnecting subscriber missed. sub
// subscribes the channels its local subscribers read (reference-counted,
// batched, re-subscribed after a reconnect), keeps Redis's count of those
// subscriptions current, and hands every message up through a Handler. What
// the channels are called and how a notice is encoded is the wire package's;
// how they travel through Redis is this package's: its scripts are
// lua/*.lua, embedded.
//
// Publisher, Subscriber and History are its faces; Redis implements all
// three.
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
	// Publish puts payload (an encoded wire.Message) on ch, records it in
	// ch's history when history is on, and answers how many live
	// subscriptions, over every sub instance, read ch when it went out
	// (0: nobody was listening) and where the history put it.
	Publish(ctx context.Context, ch wire.Channel, payload []byte) (Published, error)
}

// Published is what a publish did.
type Published struct {
	// Receivers is how many live subscriptions received the notice.
	Receivers int
	// Pos is the notice's place in its channel's history; zero when
	// history is off.
	Pos Position
}

// History reads the notices the bus recorded. Each channel has its own
// history: a capped Redis stream beside the channel, and an epoch that
// changes whenever the history starts over. Every method takes a
// subscription's channels together and answers for each, in order.
type History interface {
	// Since returns, oldest first, every notice of chs[i] after from[i].
	// It fails with ErrCursorExpired when any of them cannot be answered
	// exactly: the position is from another epoch, or notices after it are
	// no longer kept.
	Since(ctx context.Context, chs []wire.Channel, from []Position) ([][]Entry, error)
	// Recent returns, newest first, up to limit notices of chs[i] before
	// before[i] (exclusive), with the history's epoch. A zero before[i]
	// reads from the newest notice; a before[i] with an epoch other than the
	// history's fails with ErrCursorExpired.
	Recent(ctx context.Context, chs []wire.Channel, before []Position, limit int) ([]Page, error)
	// Head returns where each channel's history stands now: its epoch and
	// its last notice's id ("0-0": none yet).
	Head(ctx context.Context, chs []wire.Channel) ([]Position, error)
}

// Page is one channel's part of a Recent read.
type Page struct {
	Epoch   string
	Entries []Entry // newest first
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
	// ErrClosed is returned once the bus is closed: the instance is going
	// away, so a client is told UNAVAILABLE and may retry elsewhere.
	ErrClosed = fmt.Errorf("bus: closed: %w", errkind.ErrUnavailable)
	// ErrPublishOnly is returned by Subscribe on a bus made without a Handler.
	ErrPublishOnly = errors.New("bus: publish-only: no Handler configured")
	// ErrCursorExpired is returned by History reads that cannot be answered
	// exactly from what is kept (and by every read with history off).
	ErrCursorExpired = fmt.Errorf("bus: history: %w", errkind.ErrCursorExpired)
)

var (
	_ Publisher  = (*Redis)(nil)
	_ Subscriber = (*Redis)(nil)
	_ History    = (*Redis)(nil)
)
