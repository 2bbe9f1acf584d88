package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/wire"
	"github.com/oshirase/oshirase/wire/service"
)

// Config configures a Redis broker.
type Config struct {
	// Client runs commands (counts). Required, with ContextTimeoutEnabled
	// (as service.RedisOptions sets it). Its Pub/Sub connection is opened
	// from the same options.
	Client *redis.Client
	// Handler receives messages. Required.
	Handler Handler
	// InstanceID names this instance in the count hashes. Default: a new UUID.
	InstanceID string
	// CountTTL is how long a recorded count stays valid if this instance
	// stops refreshing it (it crashed). Counts are refreshed every CountTTL/3.
	// Default: 30s.
	CountTTL time.Duration
	// Batch is the most channels sent in one SUBSCRIBE, UNSUBSCRIBE or
	// count pipeline. Default: 500.
	Batch int
	// HealthInterval is how long the Pub/Sub connection may stay silent
	// before it is pinged. Default: 3s.
	HealthInterval time.Duration
	// Logger. Default: slog.Default().
	Logger *slog.Logger
}

// Redis is the Redis implementation of Broker.
type Redis struct {
	cfg Config
	ps  *redis.PubSub
	log *slog.Logger

	mu     sync.Mutex
	refs   map[wire.Channel]int      // local subscriptions per channel: the wanted state
	dirty  map[wire.Channel]struct{} // channels whose wanted state changed
	next   *round                    // the round that will take up dirty
	resync bool                      // rewrite every count in the next round
	closed bool
	kick   chan struct{}
	done   chan struct{}
	// stop cancels whatever Redis call a goroutine of the broker is
	// waiting on, at Close.
	stopCtx  context.Context
	stop     context.CancelFunc
	syncDone chan struct{} // closed when the sync loop has returned
	recvDone chan struct{} // closed when the reader has returned

	// Owned by the sync loop.
	inRedis map[wire.Channel]bool // channels the Pub/Sub connection is subscribed to

	// Confirmations: channel → SUBSCRIBEs sent and not yet confirmed.
	confirmMu  sync.Mutex
	unconfirmd map[wire.Channel]int
	confirmed  chan struct{} // closed and replaced on every confirmation

	healthy   atomic.Bool
	roundErrs atomic.Int64
	retryLog  service.Throttle
}

// round is one pass of the sync loop; waiters learn its outcome.
type round struct {
	done chan struct{}
	err  error
}

func newRound() *round { return &round{done: make(chan struct{})} }

// NewRedis starts a broker. Close stops it.
func NewRedis(cfg Config) (*Redis, error) {
	if cfg.Client == nil || cfg.Handler == nil {
		return nil, errors.New("broker: Client and Handler are required")
	}
	if !cfg.Client.Options().ContextTimeoutEnabled {
		// Without it go-redis ignores the deadlines that bound every
		// round, subscription and Close against a Redis that stops
		// answering.
		return nil, errors.New("broker: Client needs ContextTimeoutEnabled")
	}
	if cfg.InstanceID == "" {
		cfg.InstanceID = uuid.NewString()
	}
	if cfg.CountTTL <= 0 {
		cfg.CountTTL = 30 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	stopCtx, stop := context.WithCancel(context.Background())
	b := &Redis{
		cfg:        cfg,
		stopCtx:    stopCtx,
		stop:       stop,
		syncDone:   make(chan struct{}),
		recvDone:   make(chan struct{}),
		log:        cfg.Logger.With("component", "broker"),
		ps:         cfg.Client.Subscribe(context.Background()),
		refs:       map[wire.Channel]int{},
		dirty:      map[wire.Channel]struct{}{},
		next:       newRound(),
		kick:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		inRedis:    map[wire.Channel]bool{},
		unconfirmd: map[wire.Channel]int{},
		confirmed:  make(chan struct{}),
	}
	go b.receive()
	go b.syncLoop()
	return b, nil
}

// InstanceID is the name this instance records its counts under.
func (b *Redis) InstanceID() string { return b.cfg.InstanceID }

// SyncFailures counts rounds that could not bring Redis in line (it was
// unreachable); each is retried.
func (b *Redis) SyncFailures() int64 { return b.roundErrs.Load() }

// Healthy reports whether the Pub/Sub connection is up.
func (b *Redis) Healthy() bool { return b.healthy.Load() }

// Subscribe implements Broker.
func (b *Redis) Subscribe(ctx context.Context, chs []wire.Channel) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("broker: closed")
	}
	// One round takes up every channel of the subscription: their counts
	// are written together, so none reports a subscription that may still
	// fail on another channel.
	for _, ch := range chs {
		b.refs[ch]++
		b.dirty[ch] = struct{}{}
	}
	r := b.next
	b.mu.Unlock()
	b.poke()

	for {
		select {
		case <-r.done:
			if r.err == nil {
				return nil
			}
			// The round failed and put chs back for the next one.
			b.mu.Lock()
			r = b.next
			b.mu.Unlock()
		case <-ctx.Done():
			b.Unsubscribe(chs)
			return fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(ctx))
		}
	}
}

// Unsubscribe implements Broker.
func (b *Redis) Unsubscribe(chs []wire.Channel) {
	b.mu.Lock()
	for _, ch := range chs {
		if n := b.refs[ch] - 1; n > 0 {
			b.refs[ch] = n
		} else {
			delete(b.refs, ch)
		}
		b.dirty[ch] = struct{}{}
	}
	b.mu.Unlock()
	b.poke()
}

// Channels returns how many channels have local subscribers.
func (b *Redis) Channels() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.refs)
}

func (b *Redis) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// closeTimeout bounds Close's removal of this instance's counts; a Redis
// that does not answer in time leaves them to expire after CountTTL.
const closeTimeout = 2 * time.Second

// Close removes this instance's counts, closes the Pub/Sub connection and
// stops the broker's goroutines; it returns within about closeTimeout even
// when Redis does not answer. Subscribers still waiting get an error.
func (b *Redis) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.done)
	// A round in flight would race the removal below, and may be waiting
	// on a Redis that does not answer: cut it short, and wait for it.
	b.stop()
	<-b.syncDone

	// Every channel this instance may have a count on: the live ones, and
	// those whose last subscription ended in a round that never ran (as
	// they all do at shutdown, when the sockets close just before this).
	b.mu.Lock()
	counted := map[wire.Channel]struct{}{}
	for ch := range b.refs {
		counted[ch] = struct{}{}
	}
	for ch := range b.dirty {
		counted[ch] = struct{}{}
	}
	for ch := range b.inRedis {
		counted[ch] = struct{}{}
	}
	b.mu.Unlock()
	chs := make([]wire.Channel, 0, len(counted))
	for ch := range counted {
		chs = append(chs, ch)
	}

	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	zero := make([]int, len(chs))
	if err := b.writeCounts(ctx, chs, zero); err != nil {
		b.log.Warn("could not remove counts at shutdown; they expire on their own", "err", err, "ttl", b.cfg.CountTTL)
	}
	err := b.ps.Close()
	<-b.recvDone
	return err
}

// receive reads the Pub/Sub connection until Close. go-redis reconnects and
// re-subscribes on its own; confirmations it did not ask for mean exactly
// that, and trigger a rewrite of every count (Redis may have restarted and
// lost them).
//
// A silent connection is pinged every HealthInterval. A PING still
// unanswered at the next one marks the connection down: a Redis that
// accepts bytes and never answers (stopped, or stuck in a long script) must
// not look healthy, as a socket write to it still succeeds.
func (b *Redis) receive() {
	defer close(b.recvDone)
	ctx := context.Background() // Close ends the reads by closing the connection
	backoff := 50 * time.Millisecond
	// Connect now rather than at the first SUBSCRIBE: readiness reports the
	// connection, and the PONG proves it.
	_ = b.ps.Ping(ctx)
	pinged := true // a PING is out: silence until the next read is suspect
	for {
		msg, err := b.ps.ReceiveTimeout(ctx, b.cfg.HealthInterval)
		if err != nil {
			select {
			case <-b.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if pinged {
					b.setHealthy(false, errNoPong)
				}
				// Silence: ask for a PONG. A dead connection fails the next read.
				if perr := b.ps.Ping(ctx); perr != nil {
					b.setHealthy(false, perr)
				}
				pinged = true
				continue
			}
			b.setHealthy(false, err)
			select {
			case <-b.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		pinged = false
		b.setHealthy(true, nil)
		switch m := msg.(type) {
		case *redis.Message:
			b.cfg.Handler(wire.Channel(m.Channel), []byte(m.Payload))
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				b.confirm(wire.Channel(m.Channel))
			}
		}
	}
}

// errNoPong is why a connection that stopped answering counts as down.
var errNoPong = errors.New("broker: redis did not answer a PING within the health interval")

func (b *Redis) setHealthy(ok bool, err error) {
	if b.healthy.Swap(ok) != ok {
		if ok {
			b.log.Info("redis pub/sub connected")
		} else {
			b.log.Warn("redis pub/sub connection lost; reconnecting", "err", err)
		}
	}
}

// expect notes SUBSCRIBEs about to be sent.
func (b *Redis) expect(chs []wire.Channel) {
	b.confirmMu.Lock()
	for _, ch := range chs {
		b.unconfirmd[ch]++
	}
	b.confirmMu.Unlock()
}

// forget drops pending confirmations of channels about to be unsubscribed:
// go-redis will not re-subscribe them, so those confirmations may never come.
func (b *Redis) forget(chs []wire.Channel) {
	b.confirmMu.Lock()
	for _, ch := range chs {
		delete(b.unconfirmd, ch)
	}
	b.confirmMu.Unlock()
}

func (b *Redis) confirm(ch wire.Channel) {
	b.confirmMu.Lock()
	n, asked := b.unconfirmd[ch]
	switch {
	case n > 1:
		b.unconfirmd[ch] = n - 1
	case asked:
		delete(b.unconfirmd, ch)
	}
	close(b.confirmed)
	b.confirmed = make(chan struct{})
	b.confirmMu.Unlock()
	if !asked {
		// A re-subscription after go-redis reconnected.
		b.mu.Lock()
		b.resync = true
		b.mu.Unlock()
		b.poke()
	}
}

// awaitConfirmed waits until none of chs has an unconfirmed SUBSCRIBE.
func (b *Redis) awaitConfirmed(ctx context.Context, chs []wire.Channel) error {
	for {
		b.confirmMu.Lock()
		pending := false
		for _, ch := range chs {
			if b.unconfirmd[ch] > 0 {
				pending = true
				break
			}
		}
		wait := b.confirmed
		b.confirmMu.Unlock()
		if !pending {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("%w: no SUBSCRIBE confirmation: %w", ErrUnavailable, ctx.Err())
		}
	}
}
