package publish

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/wire"
)

// Bus publishes through oshirase's own bus, as pub does: the publish
// script counts the live subscriptions, appends the notice to its
// channel's history and PUBLISHes it, in one step, so that what it sends
// can be replayed to a subscriber that resumes after a cursor. The count
// it reports is subscriptions, over every sub instance.
type Bus struct {
	rdb    redis.UniversalClient
	bus    *bus.Redis
	codec  WireCodec
	tenant string
	batch  int
}

// NewBus connects to addr with the history settings sub runs with
// (HISTORY_SIZE, HISTORY_TTL). With cluster (seed nodes, host:port) it
// connects to that Redis Cluster instead, as REDIS_CLUSTER_ADDRS makes pub
// and sub do: the bus then runs the cluster's publish script (SPUBLISH,
// keys in the channel's slot) and addr is not used.
func NewBus(addr string, cluster []string, tenant string, historySize int, historyTTL time.Duration, poolSize int) (*Bus, error) {
	var rdb redis.UniversalClient
	if len(cluster) > 0 {
		addr = strings.Join(cluster, ",")
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster, PoolSize: max(poolSize, 4), ContextTimeoutEnabled: true})
	} else {
		opt, err := redis.ParseURL(addr)
		if err != nil {
			opt = &redis.Options{Addr: addr}
		}
		opt.PoolSize = max(poolSize, 4)
		opt.ContextTimeoutEnabled = true
		rdb = redis.NewClient(opt)
	}
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("publish: redis %s: %w", addr, err)
	}
	b, err := bus.NewRedis(bus.Config{Client: rdb, HistorySize: historySize, HistoryTTL: historyTTL})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	return &Bus{rdb: rdb, bus: b, codec: WireCodec{Tenant: tenant}, batch: 1}, nil
}

// Batched makes Publish hand up to n notices at once to the bus's
// PublishBatch, as pub's publishBatch does (one script per 100 notices on
// one Redis, one per channel on a cluster, all in one pipeline per shard).
func (p *Bus) Batched(n int) *Bus {
	p.batch = max(n, 1)
	return p
}

func (p *Bus) MaxBatch() int { return p.batch }

func (p *Bus) Close() error {
	_ = p.bus.Close()
	return p.rdb.Close()
}

// Client exposes the Redis client (for INFO and the like): a
// *redis.ClusterClient on a cluster.
func (p *Bus) Client() redis.UniversalClient { return p.rdb }

func (p *Bus) Publish(ctx context.Context, ns []Notice) (int64, int, error) {
	if len(ns) > 1 {
		return p.publishBatch(ctx, ns)
	}
	now := time.Now()
	var got int64
	failed := 0
	var first error
	for _, n := range ns {
		ch, err := p.codec.Channel(n.User)
		if err != nil {
			return got, len(ns), err
		}
		msg, err := p.codec.Encode(n.Text, now)
		if err == nil {
			var r bus.Published
			if r, err = p.bus.Publish(ctx, wire.Channel(ch), msg); err == nil {
				got += int64(r.Receivers)
				continue
			}
		}
		failed++
		if first == nil {
			first = err
		}
	}
	return got, failed, first
}

func (p *Bus) publishBatch(ctx context.Context, ns []Notice) (int64, int, error) {
	now := time.Now()
	batch := make([]bus.Notice, len(ns))
	for i, n := range ns {
		ch, err := p.codec.Channel(n.User)
		if err != nil {
			return 0, len(ns), err
		}
		msg, err := p.codec.Encode(n.Text, now)
		if err != nil {
			return 0, len(ns), err
		}
		batch[i] = bus.Notice{Channel: wire.Channel(ch), Payload: msg}
	}
	var got int64
	failed := 0
	var first error
	for _, o := range p.bus.PublishBatch(ctx, batch) {
		if o.Err != nil {
			failed++
			if first == nil {
				first = o.Err
			}
			continue
		}
		got += int64(o.Receivers)
	}
	return got, failed, first
}
