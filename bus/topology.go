package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/wire"
)

// kickTopology has the sync loop read the cluster's slot map again (a
// connection failed, a slot moved, a probe went astray). No-op off a
// cluster.
func (b *Redis) kickTopology() {
	if b.cluster == nil {
		return
	}
	select {
	case b.topo <- struct{}{}:
	default:
	}
	b.poke()
}

// followMove reads the slot map again after a master dropped a wanted
// channel (a server SUNSUBSCRIBE: its slot moved): at once and, while the
// map shows no change, every moveRetry up to moveReads times. The node
// that answers CLUSTER SLOTS (any one) may not know of the move yet:
// `redis-cli --cluster reshard` tells the masters one after the other,
// replicas learn it by gossip. Read once, such a stale map left the
// channel unsubscribed until TopologyInterval's next read.
func (b *Redis) followMove() {
	if b.cluster == nil {
		return
	}
	b.moveReads.Store(moveReads)
	b.kickTopology()
}

// followMove's retries: up to 5 s, past which TopologyInterval's reads
// take over.
const (
	moveReads = 50
	moveRetry = 100 * time.Millisecond
)

// moveUnseen reports whether followMove wants the slot map read again,
// using up one of its reads.
func (b *Redis) moveUnseen() bool {
	n := b.moveReads.Load()
	if n <= 0 {
		return false
	}
	b.moveReads.CompareAndSwap(n, n-1)
	return true
}

// refreshTopology reads the cluster's slot map (CLUSTER SLOTS) and brings
// the shards in line with it, in the sync loop: a shard for every master
// that owns slots, channels moved (SUNSUBSCRIBE on the old master,
// SSUBSCRIBE on the new) whose slot changed owner, probes moved onto a slot
// of their shard's master, and shards of nodes that own nothing any more
// closed. Moving anything rewrites every count once the moved channels are
// confirmed (a promoted replica may have missed the last writes).
func (b *Redis) refreshTopology() error {
	if b.cluster == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(b.stopCtx, b.cfg.ProbeTimeout)
	defer cancel()
	ranges, err := b.cluster.ClusterSlots(ctx).Result()
	if err != nil {
		return fmt.Errorf("%w: reading the cluster's slot map: %w", ErrUnavailable, err)
	}
	owner := make([]string, slotCount)
	covered := 0
	for _, r := range ranges {
		if len(r.Nodes) == 0 || r.Start < 0 || r.End >= slotCount {
			continue
		}
		for sl := r.Start; sl <= r.End; sl++ {
			if owner[sl] == "" {
				covered++
			}
			owner[sl] = r.Nodes[0].Addr
		}
	}
	if covered < slotCount {
		return fmt.Errorf("%w: the cluster's slot map covers %d of %d slots", ErrUnavailable, covered, slotCount)
	}

	b.shardsMu.Lock()
	byAddr := make(map[string]*shard, len(b.shards))
	for a, s := range b.shards {
		byAddr[a] = s
	}
	b.shardsMu.Unlock()
	changed := b.slots == nil
	table := make([]*shard, slotCount)
	used := map[*shard]bool{}
	for sl, addr := range owner {
		s := byAddr[addr]
		if s == nil {
			s = b.addShard(addr, b.nodeClient(addr), true)
			byAddr[addr] = s
		}
		used[s] = true
		table[sl] = s
		if !changed && b.slots[sl] != s {
			changed = true
		}
	}
	b.slots = table
	if !changed {
		return nil
	}
	b.moveReads.Store(0)       // followed
	b.cluster.ReloadState(ctx) // the client's own routing, for publishes and counts

	from, to := map[*shard][]wire.Channel{}, map[*shard][]wire.Channel{}
	for ch, s := range b.inRedis {
		if ns := table[slotOf(string(ch))]; ns != s {
			from[s] = append(from[s], ch)
			to[ns] = append(to[ns], ch)
			b.inRedis[ch] = ns
		}
	}
	for s, chs := range from {
		s.unsubscribe(ctx, chs)
	}
	for s, chs := range to {
		s.subscribe(ctx, chs)
	}
	for s := range used {
		s.setProbeChannel(b.probeChannel(s))
	}
	for addr, s := range byAddr {
		if !used[s] {
			// Its replacements move to the retired total in the same step
			// (Replaced reads both under shardsMu): the total, a
			// Prometheus counter, never dips.
			b.shardsMu.Lock()
			delete(b.shards, addr)
			b.retiredReplaced.Add(s.replaced.Load())
			b.shardsMu.Unlock()
			_ = s.close()
		}
	}
	moved := 0
	for _, chs := range to {
		moved += len(chs)
	}
	b.log.Info("redis cluster slot map changed", "masters", len(used), "channels_moved", moved)
	if moved > 0 {
		b.mu.Lock()
		b.resync = true
		b.mu.Unlock()
	}
	return nil
}

// nodeClient is a client of one cluster node with the cluster client's
// credentials, TLS and timeouts: a shard's Pub/Sub connection and probes.
func (b *Redis) nodeClient(addr string) *redis.Client {
	o := b.cluster.Options()
	return redis.NewClient(&redis.Options{
		Addr:                  addr,
		ClientName:            o.ClientName,
		Dialer:                o.Dialer,
		Protocol:              o.Protocol,
		Username:              o.Username,
		Password:              o.Password,
		CredentialsProvider:   o.CredentialsProvider,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		TLSConfig:             o.TLSConfig,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		PoolSize:              2, // probes; messages use the Pub/Sub connection
	})
}
