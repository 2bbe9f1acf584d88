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
	// Client runs commands (publishes, counts). Required. The Pub/Sub
	// connection is opened from the same options.
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
	cfg Config
	ps  *redis.PubSub
	log *slog.Logger

	mu      sync.Mutex
	refs    map[wire.Channel]int      // local subscriptions per channel: the wanted state
	dirty   map[wire.Channel]struct{} // channels whose wanted state changed
	next    *round                    // the round that will take up dirty
	resync  bool                      // rewrite every count in the next round
	closed  bool
	kick    chan struct{}
	done    chan struct{}
	stopped sync.WaitGroup

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
	b := &Redis{
		cfg:        cfg,
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
	b.stopped.Add(2)
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

// Close removes this instance's counts, closes the Pub/Sub connection and
// stops the subscriber side's goroutines. Subscribers still waiting get an error.
func (b *Redis) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	refs := make([]wire.Channel, 0, len(b.refs))
	for ch := range b.refs {
		refs = append(refs, ch)
	}
	b.mu.Unlock()
	close(b.done)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	zero := make([]int, len(refs))
	if err := b.writeCounts(ctx, refs, zero); err != nil {
		b.log.Warn("could not remove counts at shutdown; they expire on their own", "err", err, "ttl", b.cfg.CountTTL)
	}
	err := b.ps.Close()
	b.stopped.Wait()
	return err
}
