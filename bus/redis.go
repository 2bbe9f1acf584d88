package bus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/service/logging"
	"github.com/oshirase/oshirase/wire"
)

// Config configures a Redis bus.
type Config struct {
	// Client runs commands (publishes, counts). Required, with
	// ContextTimeoutEnabled (as envconf.RedisOptions sets it): without it
	// go-redis ignores the deadlines that bound every publish, round,
	// subscription and Close against a Redis that stops answering. The
	// Pub/Sub connection is opened from the same options.
	Client *redis.Client
	// Handler receives messages. Nil makes a publish-only bus (pub): no
	// Pub/Sub connection, no goroutines, and Subscribe fails.
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
	// HistorySize is how many notices each channel's history keeps.
	// Zero: no history (Publish records nothing, History reads fail with
	// ErrCursorExpired or find nothing).
	HistorySize int
	// HistoryTTL is how long a notice is kept at least: older ones are
	// trimmed by the next publish to their channel, and a channel silent
	// this long loses its history. Zero: no history.
	HistoryTTL time.Duration
	// Logger. Default: slog.Default().
	Logger *slog.Logger
}

// Redis is the bus on one Redis server: Publisher and Subscriber.
type Redis struct {
	cfg   Config
	ps    *redis.PubSub
	log   *slog.Logger
	reads chan struct{} // turns for history reads (evalEach)

	mu     sync.Mutex
	refs   map[wire.Channel]int      // local subscriptions per channel: the wanted state
	dirty  map[wire.Channel]struct{} // channels whose wanted state changed
	next   *round                    // the round that will take up dirty
	resync bool                      // rewrite every count in the next round
	closed bool
	kick   chan struct{}
	done   chan struct{}
	// stop cancels whatever Redis call a goroutine of the bus is waiting
	// on, at Close.
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
	retryLog  logging.Throttle
}

// round is one pass of the sync loop; waiters learn its outcome.
type round struct {
	done chan struct{}
	err  error
}

func newRound() *round { return &round{done: make(chan struct{})} }

// NewRedis returns a bus on cfg.Client; with a Handler it opens the
// Pub/Sub connection and starts the subscriber side. Close stops it.
func NewRedis(cfg Config) (*Redis, error) {
	if cfg.Client == nil {
		return nil, errors.New("bus: Client is required")
	}
	if !cfg.Client.Options().ContextTimeoutEnabled {
		return nil, errors.New("bus: Client needs ContextTimeoutEnabled")
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
	if cfg.HistorySize <= 0 || cfg.HistoryTTL <= 0 {
		cfg.HistorySize, cfg.HistoryTTL = 0, 0
	}
	stopCtx, stop := context.WithCancel(context.Background())
	b := &Redis{
		cfg:        cfg,
		reads:      make(chan struct{}, concurrentReads),
		stopCtx:    stopCtx,
		stop:       stop,
		syncDone:   make(chan struct{}),
		recvDone:   make(chan struct{}),
		log:        cfg.Logger.With("component", "bus"),
		refs:       map[wire.Channel]int{},
		dirty:      map[wire.Channel]struct{}{},
		next:       newRound(),
		kick:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		inRedis:    map[wire.Channel]bool{},
		unconfirmd: map[wire.Channel]int{},
		confirmed:  make(chan struct{}),
	}
	if cfg.Handler == nil {
		b.closed = true // nothing to subscribe, nothing to stop
		return b, nil
	}
	b.ps = cfg.Client.Subscribe(context.Background())
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

// concurrentReads is how many history reads (heads, replays, pages) run at
// once on one bus; the rest wait their turn. One: with the Pub/Sub
// connection and the sync loop's, an instance holds three connections to
// Redis whatever the burst (each read is one pipelined round trip).
const concurrentReads = 1

// closeTimeout bounds Close's removal of this instance's counts; a Redis
// that does not answer in time leaves them to expire after CountTTL.
const closeTimeout = 2 * time.Second

// Close removes this instance's counts, closes the Pub/Sub connection and
// stops the subscriber side's goroutines; it returns within about
// closeTimeout even when Redis does not answer. Subscribers still waiting
// get an error.
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
