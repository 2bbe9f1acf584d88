// Package hub fans notices out to the subscriptions of this instance. It
// maps each channel to the local subscriptions reading it. A notice is
// decoded once, rendered once per selection shape present on its channel,
// and the same bytes are handed to every subscription's sink without
// blocking: a sink that is over its bound refuses and closes itself, so one
// subscriber that stops reading never delays another.
package hub

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/logging"
	"github.com/oshirase/oshirase/service/metrics"
	"github.com/oshirase/oshirase/wire"
)

// ErrClosed is returned by Subscribe once the hub is closed.
var ErrClosed = fmt.Errorf("hub: closed: %w", errkind.ErrUnavailable)

// Bus is what the hub needs from the bus's subscriber side; bus.Redis
// implements it.
type Bus interface {
	// Subscribe records one more local subscription to each of chs, all
	// at once. It returns once messages published to any of them from then
	// on will reach the hub, or with an error (and nothing recorded).
	Subscribe(ctx context.Context, chs []wire.Channel) error
	// Unsubscribe records that one local subscription to each of chs has
	// ended.
	Unsubscribe(chs []wire.Channel)
}

// Shape turns a notice into the payload a subscription sends. The hub
// renders a notice once per distinct Shape on its channel and hands the
// same bytes to every subscription of that shape, so Render must depend on
// the shape and the notice only, and the bytes are never modified after.
type Shape interface {
	Render(m *wire.Message) []byte
}

// Verdict is a sink's answer to one payload.
type Verdict uint8

const (
	// Sent: queued for the subscriber.
	Sent Verdict = iota
	// Refused: the subscriber is over its bound; the sink closes itself
	// (and with it the subscription), saying why.
	Refused
	// Gone: the subscriber has ended; nothing was queued.
	Gone
)

// Sink receives one subscription's payloads. Send must not block. It gets
// the notice's channel and the decoded notice beside the shared payload
// (its position in the channel's history, for a cursor), and must not
// modify either.
type Sink interface {
	Send(ch wire.Channel, m *wire.Message, payload []byte) Verdict
}

// Config configures a Hub.
type Config struct {
	// Bus subscribes channels on the message bus. Required.
	Bus Bus
	// SubscribeTimeout bounds how long Subscribe waits for the bus to
	// have every channel live (Redis down: the subscriber gets an error
	// instead of waiting forever). Default: 5s.
	SubscribeTimeout time.Duration
	// Lanes decode and render what Dispatch is handed, channels hashed
	// over them (one channel's notices stay in order). Default: GOMAXPROCS.
	Lanes int
	// Logger. Default: slog.Default().
	Logger *slog.Logger
	// FanOut observes the seconds each notice's delivery takes: decoding,
	// rendering, and queueing it to every local subscription of its
	// channel. Default: nothing is observed.
	FanOut metrics.Observer
}

// Stats are the hub's counters since start.
type Stats struct {
	Subscriptions int64 // live now
	Delivered     int64 // payloads queued to a subscription
	Refused       int64 // payloads a sink refused (its subscriber was over its bound)
	Renders       int64 // notices rendered, once per shape present on their channel
	Received      int64 // messages handed in by the bus
	Malformed     int64 // messages that failed to decode and were skipped
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

	lanes   []*lane
	lanesWG sync.WaitGroup

	subscriptions, delivered, refused, renders, received, malformed atomic.Int64
	malformedLog                                                    logging.Throttle
}

// lane is one goroutine's queue of messages to deliver.
type lane struct {
	mu      sync.Mutex
	queue   []inbound
	spare   []inbound
	stopped bool
	wake    chan struct{}
}

type inbound struct {
	ch      wire.Channel
	payload []byte
}

type shard struct {
	mu   sync.RWMutex
	subs map[wire.Channel]*members
}

// members is one channel's local subscriptions in the order they came. A
// fan-out goes through them in that order, which is about the order their
// connections, sockets and buffers were allocated in: neighbours in
// memory, so each send finds more of what it touches (in the process and
// in the kernel) in the CPU's caches and TLB than in a map's random order.
// Measured on notices to 10,000 tabs: about 14 µs of sub's CPU a
// delivery instead of 18 (loadtest/README.md, "Fan-out in the order
// subscriptions came").
//
// A subscription that ends leaves a hole (nil), so the others keep their
// places; the list is compacted once holes are half of it.
type members struct {
	list  []*Subscription
	holes int
}

// add appends s, which reads the channel at index k of its channels.
func (ms *members) add(s *Subscription, k int) {
	s.at[k] = len(ms.list)
	ms.list = append(ms.list, s)
}

// remove takes out s (reading the channel at index k of its channels), if
// it is there (a hub closing while s subscribes can remove it before it
// is added), and reports whether none is left.
func (ms *members) remove(s *Subscription, k int) bool {
	i := s.at[k]
	if i >= len(ms.list) || ms.list[i] != s {
		return false
	}
	ms.list[i] = nil
	ms.holes++
	if ms.holes == len(ms.list) {
		return true
	}
	if ms.holes > len(ms.list)/2 {
		kept := ms.list[:0]
		if n := len(ms.list) - ms.holes; cap(ms.list) > 64 && n < cap(ms.list)/4 {
			kept = make([]*Subscription, 0, 2*n) // most have left: give back the rest
		}
		ch := s.channels[k]
		for _, o := range ms.list {
			if o != nil {
				o.at[slices.Index(o.channels, ch)] = len(kept)
				kept = append(kept, o)
			}
		}
		clear(ms.list[len(kept):])
		ms.list, ms.holes = kept, 0
	}
	return false
}

// New returns an empty hub.
func New(cfg Config) *Hub {
	if cfg.SubscribeTimeout <= 0 {
		cfg.SubscribeTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Lanes <= 0 {
		cfg.Lanes = runtime.GOMAXPROCS(0)
	}
	cfg.FanOut = metrics.Or(cfg.FanOut)
	h := &Hub{cfg: cfg, log: cfg.Logger.With("component", "hub"), seed: maphash.MakeSeed(), live: map[*Subscription]struct{}{}}
	for i := range h.shards {
		h.shards[i].subs = map[wire.Channel]*members{}
	}
	for range cfg.Lanes {
		l := &lane{wake: make(chan struct{}, 1)}
		h.lanes = append(h.lanes, l)
		h.lanesWG.Add(1)
		go h.run(l)
	}
	return h
}

// Dispatch hands one message from the bus to its channel's lane and
// returns at once: the bus's reader (which also reads Redis's
// confirmations) never waits for decoding or rendering, and the lanes do
// that work on every core. Notices of one channel keep their order.
func (h *Hub) Dispatch(ch wire.Channel, payload []byte) {
	l := h.lanes[maphash.String(h.seed, string(ch))%uint64(len(h.lanes))]
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.queue = append(l.queue, inbound{ch, payload})
	first := len(l.queue) == 1
	l.mu.Unlock()
	if first {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

func (h *Hub) run(l *lane) {
	defer h.lanesWG.Done()
	for {
		l.mu.Lock()
		batch := l.queue
		stopped := l.stopped
		l.queue, l.spare = l.spare[:0], nil
		l.mu.Unlock()
		if len(batch) == 0 {
			if stopped {
				return
			}
			<-l.wake
			continue
		}
		for i, m := range batch {
			h.Deliver(m.ch, m.payload)
			batch[i] = inbound{}
		}
		l.mu.Lock()
		l.spare = batch[:0]
		l.mu.Unlock()
	}
}

func (h *Hub) shard(ch wire.Channel) *shard {
	return &h.shards[maphash.String(h.seed, string(ch))%shardCount]
}

// Subscription is one subscriber's view of a set of channels: every
// notice published to any of them is rendered in its shape and handed to
// its sink once, in publish order per channel.
type Subscription struct {
	hub      *Hub
	channels []wire.Channel
	shape    Shape
	sink     Sink
	// at[k] is its place in the members of channels[k], guarded by that
	// channel's shard.
	at []int

	mu     sync.Mutex
	closed bool
	held   bool // the channels hold a bus reference
}

// Subscribe starts a subscription to channels (no duplicates). It returns
// once the bus has every channel live, so a notice published after it
// returns is delivered; notices published meanwhile may already reach sink.
func (h *Hub) Subscribe(ctx context.Context, channels []wire.Channel, shape Shape, sink Sink) (*Subscription, error) {
	s := &Subscription{hub: h, channels: channels, shape: shape, sink: sink, at: make([]int, len(channels))}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	h.live[s] = struct{}{}
	h.mu.Unlock()
	h.subscriptions.Add(1)

	for k, ch := range channels {
		sh := h.shard(ch)
		sh.mu.Lock()
		ms := sh.subs[ch]
		if ms == nil {
			ms = &members{}
			sh.subs[ch] = ms
		}
		ms.add(s, k)
		sh.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.SubscribeTimeout)
	defer cancel()
	err := h.cfg.Bus.Subscribe(ctx, channels)
	// Ifs, not a tagless switch: gremlins v0.6.0 cannot see a switch's
	// case conditions as covered (go-gremlins/gremlins#298).
	s.mu.Lock()
	if err != nil {
		s.mu.Unlock()
		s.Close()
		return nil, fmt.Errorf("hub: subscribe: %w", err)
	}
	if s.closed { // closed while subscribing
		s.mu.Unlock()
		h.cfg.Bus.Unsubscribe(channels)
		return nil, fmt.Errorf("hub: subscribe: %w", context.Canceled)
	}
	s.held = true
	s.mu.Unlock()
	return s, nil
}

// Close ends the subscription: its sink gets nothing more. It is safe to
// call more than once, from any goroutine, also while Subscribe waits.
func (s *Subscription) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	held := s.held
	s.mu.Unlock()

	h := s.hub
	h.mu.Lock()
	delete(h.live, s)
	h.mu.Unlock()
	h.subscriptions.Add(-1)
	h.unindex(s)
	if held {
		h.cfg.Bus.Unsubscribe(s.channels)
	}
}

// unindex removes s from the index entries of its channels.
func (h *Hub) unindex(s *Subscription) {
	for k, ch := range s.channels {
		sh := h.shard(ch)
		sh.mu.Lock()
		if ms := sh.subs[ch]; ms != nil && ms.remove(s, k) {
			delete(sh.subs, ch)
		}
		sh.mu.Unlock()
	}
}

// rendered is one shape's payload for the notice being delivered.
type rendered struct {
	shape   Shape
	payload []byte
}

// Deliver decodes one message from the bus, renders it once per shape
// among the subscriptions of ch and hands the bytes to each of them. It
// never blocks on a subscriber. Dispatch runs it on a lane.
func (h *Hub) Deliver(ch wire.Channel, payload []byte) {
	start := time.Now()
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
	// A channel's subscriptions come in a handful of shapes (usually one):
	// a short list found by pointer beats a map.
	var buf [4]rendered
	shapes := buf[:0]
	var sent, refused int64
	sh := h.shard(ch)
	sh.mu.RLock()
	var list []*Subscription
	if ms := sh.subs[ch]; ms != nil {
		list = ms.list
	}
	for _, s := range list {
		if s == nil {
			continue
		}
		var p []byte
		for i := range shapes {
			if shapes[i].shape == s.shape {
				p = shapes[i].payload
				break
			}
		}
		if p == nil {
			p = s.shape.Render(m)
			shapes = append(shapes, rendered{s.shape, p})
		}
		switch s.sink.Send(ch, m, p) {
		case Sent:
			sent++
		case Refused:
			refused++
		}
	}
	sh.mu.RUnlock()
	h.delivered.Add(sent)
	h.refused.Add(refused)
	h.renders.Add(int64(len(shapes)))
	h.cfg.FanOut.Observe(time.Since(start).Seconds())
}

// SubscribeTimeout is how long Subscribe waits for the bus at most.
func (h *Hub) SubscribeTimeout() time.Duration { return h.cfg.SubscribeTimeout }

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{
		Subscriptions: h.subscriptions.Load(),
		Delivered:     h.delivered.Load(),
		Refused:       h.refused.Load(),
		Renders:       h.renders.Load(),
		Received:      h.received.Load(),
		Malformed:     h.malformed.Load(),
	}
}

// Close ends every subscription, refuses new ones and stops the lanes
// (what they still hold is dropped). Sinks are not told: the transport
// closes its connections first (at shutdown, with a code that makes
// clients reconnect and resubscribe elsewhere).
func (h *Hub) Close() {
	for _, l := range h.lanes {
		l.mu.Lock()
		l.stopped = true
		l.queue = nil
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	h.lanesWG.Wait()
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
