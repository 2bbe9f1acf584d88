package bus

import (
	"context"
	"errors"
	"fmt"
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
	// Client runs commands (publishes, counts): a *redis.Client on one
	// Redis server or a Sentinel-managed master (redis.NewFailoverClient),
	// or a *redis.ClusterClient on a Redis Cluster. Required, with
	// ContextTimeoutEnabled (as envconf sets it): without it go-redis
	// ignores the deadlines that bound every publish, round, subscription
	// and Close against a Redis that stops answering. The Pub/Sub
	// connections are opened from the same options: on a cluster one per
	// master, to that master's address, using sharded Pub/Sub.
	Client redis.UniversalClient
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
	// HealthInterval is how long a Pub/Sub connection may stay silent
	// before it is pinged. Default: 3s.
	HealthInterval time.Duration
	// ProbeInterval is how often each Pub/Sub connection is proven to
	// deliver: the bus publishes a probe to a channel of its own and must
	// receive it on that connection within ProbeTimeout, or the connection
	// is replaced (and Ready reports why). Default: 5s.
	ProbeInterval time.Duration
	// ProbeTimeout bounds a probe's round trip. Default: 2s.
	ProbeTimeout time.Duration
	// TopologyInterval is how often, on a cluster, the slot map is read
	// again to follow failovers and slot migrations (it is also read at
	// once when a connection fails or Redis says a slot moved).
	// Default: 5s.
	TopologyInterval time.Duration
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

// Redis is the bus on Redis (one server, Sentinel or Cluster): Publisher,
// Subscriber and History.
type Redis struct {
	cfg     Config
	cluster *redis.ClusterClient // non-nil on a Redis Cluster
	publish *redis.Script        // publish.lua, with SPUBLISH on a cluster
	log     *slog.Logger
	reads   chan struct{} // turns for history reads (evalEach)

	mu     sync.Mutex
	refs   map[wire.Channel]int      // local subscriptions per channel: the wanted state
	dirty  map[wire.Channel]struct{} // channels whose wanted state changed
	next   *round                    // the round that will take up dirty
	resync bool                      // rewrite every count, starting with the next round
	// refresh holds the channels a rewrite of every count has still to
	// write (runRound: a part at a time, between rounds of new work).
	refresh []wire.Channel
	closed  bool
	hist    historyReads // history reads waiting for their turn (history.go)
	kick    chan struct{}
	topo    chan struct{} // read the cluster's slot map again
	done    chan struct{}
	// stop cancels whatever Redis call a goroutine of the bus is waiting
	// on, at Close.
	stopCtx  context.Context
	stop     context.CancelFunc
	syncDone chan struct{} // closed when the sync loop has returned

	// shards are the Pub/Sub connections: one on a single Redis or
	// Sentinel, one per master on a cluster. Written by the sync loop
	// under shardsMu.
	shardsMu sync.Mutex
	shards   map[string]*shard // by master address ("" when not a cluster)

	// moveReads is how many more times the sync loop reads the slot map,
	// moveRetry apart, while it shows no change after a master dropped a
	// wanted channel (followMove).
	moveReads atomic.Int32

	// Owned by the sync loop.
	inRedis map[wire.Channel]*shard // the shard each subscribed channel is on
	slots   []*shard                // cluster: slot → the shard of its master; nil until read

	// Confirmations: channel → SUBSCRIBEs sent and not yet confirmed.
	confirmMu  sync.Mutex
	unconfirmd map[wire.Channel]pending
	confirmed  chan struct{} // closed and replaced on every confirmation

	roundErrs       atomic.Int64
	retiredReplaced atomic.Int64 // Replaced of shards closed since
	retryLog        logging.Throttle
}

// pending is a channel's unconfirmed SUBSCRIBEs, on the shard they went to.
type pending struct {
	s *shard
	n int
}

// round is one pass of the sync loop; waiters learn its outcome.
type round struct {
	done chan struct{}
	err  error
}

func newRound() *round { return &round{done: make(chan struct{})} }

// NewRedis returns a bus on cfg.Client; with a Handler it opens the
// Pub/Sub connection(s) and starts the subscriber side. Close stops it.
func NewRedis(cfg Config) (*Redis, error) {
	if cfg.Client == nil {
		return nil, errors.New("bus: Client is required")
	}
	var cluster *redis.ClusterClient
	switch c := cfg.Client.(type) {
	case *redis.Client:
		if !c.Options().ContextTimeoutEnabled {
			return nil, errors.New("bus: Client needs ContextTimeoutEnabled")
		}
	case *redis.ClusterClient:
		if !c.Options().ContextTimeoutEnabled {
			return nil, errors.New("bus: Client needs ContextTimeoutEnabled")
		}
		cluster = c
	default:
		return nil, fmt.Errorf("bus: Client %T is not supported: use a *redis.Client or *redis.ClusterClient", cfg.Client)
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
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 5 * time.Second
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 2 * time.Second
	}
	if cfg.TopologyInterval <= 0 {
		cfg.TopologyInterval = 5 * time.Second
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
		cluster:    cluster,
		publish:    publishScript,
		reads:      make(chan struct{}, concurrentReads),
		stopCtx:    stopCtx,
		stop:       stop,
		syncDone:   make(chan struct{}),
		log:        cfg.Logger.With("component", "bus"),
		refs:       map[wire.Channel]int{},
		dirty:      map[wire.Channel]struct{}{},
		next:       newRound(),
		kick:       make(chan struct{}, 1),
		topo:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		shards:     map[string]*shard{},
		inRedis:    map[wire.Channel]*shard{},
		unconfirmd: map[wire.Channel]pending{},
		confirmed:  make(chan struct{}),
	}
	if cluster != nil {
		b.publish = publishShardedScript
	}
	if cfg.Handler == nil {
		b.closed = true // nothing to subscribe, nothing to stop
		return b, nil
	}
	if cluster == nil {
		b.addShard("", cfg.Client.(*redis.Client), false)
	} else {
		b.kickTopology() // the sync loop reads the slot map first
	}
	go b.syncLoop()
	return b, nil
}

// InstanceID is the name this instance records its counts under.
func (b *Redis) InstanceID() string { return b.cfg.InstanceID }

// SyncFailures counts rounds that could not bring Redis in line (it was
// unreachable); each is retried.
func (b *Redis) SyncFailures() int64 { return b.roundErrs.Load() }

// Healthy reports whether every Pub/Sub connection is up (it answers).
// Ready says more: whether they deliver.
func (b *Redis) Healthy() bool {
	shards := b.shardList()
	if len(shards) == 0 {
		return false
	}
	for _, s := range shards {
		if !s.healthy.Load() {
			return false
		}
	}
	return true
}

// concurrentReads is how many history reads (heads, replays, pages) run at
// once on one bus; the rest wait their turn. One: with the Pub/Sub
// connection and the sync loop's, an instance holds three connections to
// Redis whatever the burst (each read is one pipelined round trip).
const concurrentReads = 1

// closeTimeout bounds Close's removal of this instance's counts; a Redis
// that does not answer in time leaves them to expire after CountTTL.
const closeTimeout = 2 * time.Second

// Close removes this instance's counts, closes the Pub/Sub connections and
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
	for ch := range b.inRedis { // the sync loop has returned
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
	var err error
	for _, s := range b.shardList() {
		if cerr := s.close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}
