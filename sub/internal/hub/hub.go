// Package hub fans notices out to the subscriptions of this instance. It
// maps each channel to the local subscriptions reading it; delivery is a
// non-blocking enqueue into each subscription's bounded queue, so one
// subscriber that stops reading never delays another. A subscription whose
// queue overflows is dropped, counted and told why.
package hub

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/logging"
	"github.com/oshirase/oshirase/wire"
)

// ErrSlowConsumer is the reason given to a subscription dropped because its
// queue overflowed.
var ErrSlowConsumer = errors.New("hub: slow consumer: send queue overflowed")

// ErrClosed is returned by Subscribe once the hub is closed.
var ErrClosed = fmt.Errorf("hub: closed: %w", errkind.ErrUnavailable)

// Bus is what the hub needs from the bus's subscriber side; bus.Redis
// implements it.
type Bus interface {
	// Subscribe has every channel of chs live and counted, or fails.
	Subscribe(ctx context.Context, chs []wire.Channel) error
	// Unsubscribe gives back one reference to each channel of chs.
	Unsubscribe(chs []wire.Channel)
}

// Config configures a Hub.
type Config struct {
	// Bus subscribes channels on the message bus. Required.
	Bus Bus
	// QueueSize is how many notices may wait for one subscription before it
	// counts as a slow consumer. Default: 128.
	QueueSize int
	// SubscribeTimeout bounds how long Subscribe waits for the bus to
	// have every channel live (Redis down: the subscriber gets an error
	// instead of waiting forever). Default: 5s.
	SubscribeTimeout time.Duration
	// Logger. Default: slog.Default().
	Logger *slog.Logger
}

// Stats are the hub's counters since start.
type Stats struct {
	Subscriptions int64 // live now
	Delivered     int64 // notices enqueued to a subscription
	Received      int64 // messages handed in by the bus
	Malformed     int64 // messages that failed to decode and were skipped
	SlowDropped   int64 // subscriptions dropped for overflowing their queue
}

const shardCount = 64

// Hub is the channel → local subscriptions index.
type Hub struct {
	cfg    Config
	log    *slog.Logger
	seed   maphash.Seed
	shards [shardCount]shard

	mu     sync.Mutex
	closed bool
	live   map[*Subscription]struct{}

	subscriptions, delivered, received, malformed, slowDropped atomic.Int64
	malformedLog                                               logging.Throttle
}

type shard struct {
	mu   sync.RWMutex
	subs map[wire.Channel]map[*Subscription]struct{}
}

// New returns an empty hub.
func New(cfg Config) *Hub {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 128
	}
	if cfg.SubscribeTimeout <= 0 {
		cfg.SubscribeTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Hub{cfg: cfg, log: cfg.Logger.With("component", "hub"), seed: maphash.MakeSeed(), live: map[*Subscription]struct{}{}}
	for i := range h.shards {
		h.shards[i].subs = map[wire.Channel]map[*Subscription]struct{}{}
	}
	return h
}

func (h *Hub) shard(ch wire.Channel) *shard {
	return &h.shards[maphash.String(h.seed, string(ch))%shardCount]
}

// Subscription is one subscriber's view of a set of channels: every
// notice published to any of them arrives once on C, in publish order per
// channel.
type Subscription struct {
	hub      *Hub
	channels []wire.Channel
	onDrop   func(error)

	mu     sync.Mutex
	c      chan *wire.Message
	closed bool
	err    error
	held   bool // the channels hold a bus reference
}

// C delivers notices; it is closed when the subscription ends.
func (s *Subscription) C() <-chan *wire.Message { return s.c }

// Err is why the subscription ended early (ErrSlowConsumer), or nil.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Subscribe starts a subscription to channels (no duplicates). It returns
// once the bus has every channel live, so a notice published after it
// returns is delivered. onDrop, if not nil, is called (on its own
// goroutine) when the hub drops the subscription, with the reason, and
// before C is closed: a transport that ends the connection in onDrop does
// so before it could take the end of C for a normal end of the stream
// (and tell its client "complete", after which it would not resubscribe).
func (h *Hub) Subscribe(ctx context.Context, channels []wire.Channel, onDrop func(error)) (*Subscription, error) {
	s := &Subscription{hub: h, channels: channels, onDrop: onDrop, c: make(chan *wire.Message, h.cfg.QueueSize)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	h.live[s] = struct{}{}
	h.mu.Unlock()
	h.subscriptions.Add(1)

	for _, ch := range channels {
		sh := h.shard(ch)
		sh.mu.Lock()
		set := sh.subs[ch]
		if set == nil {
			set = map[*Subscription]struct{}{}
			sh.subs[ch] = set
		}
		set[s] = struct{}{}
		sh.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.SubscribeTimeout)
	defer cancel()
	err := h.cfg.Bus.Subscribe(ctx, channels)
	s.mu.Lock()
	switch {
	case err == nil && !s.closed:
		s.held = true
		s.mu.Unlock()
		return s, nil
	case err == nil: // dropped while subscribing
		err = s.err
		s.mu.Unlock()
		h.cfg.Bus.Unsubscribe(channels)
	default:
		s.mu.Unlock()
		s.Close()
	}
	return nil, fmt.Errorf("hub: subscribe: %w", err)
}

// Close ends the subscription and closes C. It is safe to call more than
// once and from any goroutine.
func (s *Subscription) Close() {
	if held, ok := s.close(nil, true); ok {
		s.release(held)
	}
}

// close marks s closed with reason err, and closes C if endC (otherwise
// the caller must). It reports whether this call did, and whether its
// channels hold a bus reference to release.
func (s *Subscription) close(err error, endC bool) (held bool, ok bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false, false
	}
	s.closed = true
	s.err = err
	if endC {
		close(s.c)
	}
	held = s.held
	s.mu.Unlock()

	h := s.hub
	h.mu.Lock()
	delete(h.live, s)
	h.mu.Unlock()
	h.subscriptions.Add(-1)
	return held, true
}

// release removes s from the index and gives back its bus references.
func (s *Subscription) release(held bool) {
	s.hub.unindex(s, s.channels)
	if held {
		s.hub.cfg.Bus.Unsubscribe(s.channels)
	}
}

// unindex removes s from the index entries of channels.
func (h *Hub) unindex(s *Subscription, channels []wire.Channel) {
	for _, ch := range channels {
		sh := h.shard(ch)
		sh.mu.Lock()
		if set := sh.subs[ch]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(sh.subs, ch)
			}
		}
		sh.mu.Unlock()
	}
}

// offer enqueues m without blocking; false means the queue was full.
func (s *Subscription) offer(m *wire.Message) (accepted, overflow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, false
	}
	select {
	case s.c <- m:
		return true, false
	default:
		return false, true
	}
}

// Deliver decodes one message from the bus and enqueues it to every
// local subscription of ch. It never blocks on a subscriber.
func (h *Hub) Deliver(ch wire.Channel, payload []byte) {
	h.received.Add(1)
	m, err := wire.Decode(payload)
	if err != nil {
		n := h.malformed.Add(1)
		if ok, held := h.malformedLog.Allow(); ok {
			h.log.Warn("skipping malformed message", "channel", string(ch), "bytes", len(payload), "err", err,
				"malformed_total", n, "not_logged_since_last", held)
		}
		return
	}
	var slow []*Subscription
	var n int64
	sh := h.shard(ch)
	sh.mu.RLock()
	for s := range sh.subs[ch] {
		ok, overflow := s.offer(m)
		if ok {
			n++
		} else if overflow {
			slow = append(slow, s)
		}
	}
	sh.mu.RUnlock()
	h.delivered.Add(n)
	for _, s := range slow {
		h.drop(s, ErrSlowConsumer)
	}
}

func (h *Hub) drop(s *Subscription, reason error) {
	// Closed to offers now; C stays open until onDrop has run (Subscribe).
	held, ok := s.close(reason, false)
	if !ok {
		return
	}
	total := h.slowDropped.Add(1)
	h.log.Warn("dropping subscription", "reason", reason, "queue", h.cfg.QueueSize, "dropped_total", total)
	go func() {
		s.release(held)
		if s.onDrop != nil {
			s.onDrop(reason)
		}
		close(s.c)
	}()
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{
		Subscriptions: h.subscriptions.Load(),
		Delivered:     h.delivered.Load(),
		Received:      h.received.Load(),
		Malformed:     h.malformed.Load(),
		SlowDropped:   h.slowDropped.Load(),
	}
}

// Close ends every subscription and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	live := make([]*Subscription, 0, len(h.live))
	for s := range h.live {
		live = append(live, s)
	}
	h.mu.Unlock()
	for _, s := range live {
		s.Close()
	}
}
