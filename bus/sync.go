package bus

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/wire"
)

// syncLoop brings Redis in line with the wanted state: it runs a round
// whenever something changed, and rewrites every count every CountTTL/3.
// One goroutine does all SUBSCRIBE / UNSUBSCRIBE work, so commands for one
// channel can never overtake each other, and a burst of subscribers costs
// a few batched commands instead of one round trip each.
func (b *Redis) syncLoop() {
	defer close(b.syncDone)
	refresh := time.NewTicker(b.cfg.CountTTL / 3)
	defer refresh.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	var topoTick <-chan time.Time
	if b.cluster != nil {
		t := time.NewTicker(b.cfg.TopologyInterval)
		defer t.Stop()
		topoTick = t.C
	}
	topoDue := false
	for {
		select {
		case <-b.done:
			b.failWaiters()
			return
		case <-b.kick:
		case <-retry.C:
		case <-refresh.C:
			b.mu.Lock()
			b.resync = true
			b.mu.Unlock()
		case <-topoTick:
			topoDue = true
		case <-b.topo:
			topoDue = true
		}
		err := error(nil)
		if topoDue {
			if err = b.refreshTopology(); err == nil {
				topoDue = false
				if b.moveUnseen() {
					topoDue = true
					retry.Reset(moveRetry)
				}
			}
		}
		if err == nil {
			err = b.runRound()
		}
		if err != nil {
			n := b.roundErrs.Add(1)
			if ok, held := b.retryLog.Allow(); ok {
				b.log.Warn("syncing subscriptions with redis failed; retrying", "err", err, "failures_total", n, "not_logged_since_last", held)
			}
			retry.Reset(500 * time.Millisecond)
		}
	}
}

func (b *Redis) failWaiters() {
	b.mu.Lock()
	r := b.next
	b.next = newRound()
	b.mu.Unlock()
	r.err = ErrClosed
	close(r.done)
}

// runRound runs one round: the channels whose wanted state changed, or,
// when none did, the next part of a rewrite of every count.
//
// A rewrite of every count (every CountTTL/3, after a reconnect, after a
// slot moved) goes a part at a time (refreshChunk channels) between the
// rounds of new subscriptions: with 100,000 channels it is seconds of
// Redis work, which in one round would hold every new subscription behind
// it, past SUBSCRIBE_TIMEOUT under load.
func (b *Redis) runRound() error {
	b.mu.Lock()
	if b.resync {
		b.resync = false
		b.refresh = b.refresh[:0]
		for ch := range b.refs {
			b.refresh = append(b.refresh, ch)
		}
	}
	if len(b.dirty) == 0 {
		return b.refreshPart() // unlocks
	}
	r := b.next
	b.next = newRound()
	dirty := b.dirty
	b.dirty = map[wire.Channel]struct{}{}
	var toSub, toUnsub, counted []wire.Channel
	var counts []int
	for ch := range dirty {
		n := b.refs[ch]
		if n > 0 && b.inRedis[ch] == nil {
			toSub = append(toSub, ch)
		} else if n == 0 && b.inRedis[ch] != nil {
			toUnsub = append(toUnsub, ch)
		}
		counted = append(counted, ch)
		counts = append(counts, n)
	}
	more := len(b.refresh) > 0
	b.mu.Unlock()

	err := b.apply(toSub, toUnsub, counted, counts)
	if err != nil {
		b.mu.Lock()
		for ch := range dirty {
			b.dirty[ch] = struct{}{}
		}
		b.mu.Unlock()
	} else if more {
		b.poke() // the rewrite goes on
	}
	r.err = err
	close(r.done)
	return err
}

// refreshChunk is how many counts one part of a rewrite writes.
const refreshChunk = 2000

// refreshPart writes the next part of a rewrite of every count, if one is
// under way. b.mu is held on entry and released.
func (b *Redis) refreshPart() error {
	if len(b.refresh) == 0 {
		b.mu.Unlock()
		return nil
	}
	part := b.refresh[max(0, len(b.refresh)-refreshChunk):]
	b.refresh = b.refresh[:len(b.refresh)-len(part)]
	part = slices.Clone(part)
	counted := make([]wire.Channel, 0, len(part))
	counts := make([]int, 0, len(part))
	for _, ch := range part {
		// A channel not subscribed in Redis (not yet, or no more) is
		// written by its own round.
		if b.inRedis[ch] != nil {
			counted = append(counted, ch)
			counts = append(counts, b.refs[ch])
		}
	}
	b.mu.Unlock()

	err := b.apply(nil, nil, counted, counts)
	b.mu.Lock()
	if err != nil {
		b.refresh = append(b.refresh, part...)
	}
	more := len(b.refresh) > 0
	b.mu.Unlock()
	if err == nil && more {
		b.poke()
	}
	return err
}

func (b *Redis) apply(toSub, toUnsub, counted []wire.Channel, counts []int) error {
	ctx, cancel := context.WithTimeout(b.stopCtx, b.cfg.CountTTL/3)
	defer cancel()
	if b.cluster != nil && b.slots == nil {
		return fmt.Errorf("%w: the cluster's slot map is not known yet", ErrUnavailable)
	}
	// Each channel goes to its shard: the one Pub/Sub connection, or on a
	// cluster the one to the master of its slot.
	subs, unsubs := map[*shard][]wire.Channel{}, map[*shard][]wire.Channel{}
	for _, ch := range toSub {
		s := b.route(ch)
		b.inRedis[ch] = s
		subs[s] = append(subs[s], ch)
	}
	for _, ch := range toUnsub {
		s := b.inRedis[ch]
		delete(b.inRedis, ch)
		unsubs[s] = append(unsubs[s], ch)
	}
	// SUBSCRIBE / UNSUBSCRIBE errors need no handling here: a shard keeps
	// its set of channels and subscribes exactly that set on whatever
	// connection replaces a failed one.
	for s, chs := range subs {
		s.subscribe(ctx, chs)
	}
	for s, chs := range unsubs {
		s.unsubscribe(ctx, chs)
	}
	// Wait for every counted channel, not only the new ones: a channel whose
	// confirmation a failed round never saw must not be reported live.
	if err := b.awaitConfirmed(ctx, counted); err != nil {
		return err
	}
	// Counts promise delivery, so they are written only while the Pub/Sub
	// connection carrying them is up. After a reconnect it turns healthy
	// on the first reply, which follows the SUBSCRIBE of every channel:
	// by then Redis has all of them.
	for i, ch := range counted {
		if s := b.inRedis[ch]; counts[i] > 0 && (s == nil || !s.healthy.Load()) {
			return fmt.Errorf("%w: pub/sub connection is down", ErrUnavailable)
		}
	}
	return b.writeCounts(ctx, counted, counts)
}

// route returns the shard a channel belongs on.
func (b *Redis) route(ch wire.Channel) *shard {
	if b.cluster == nil {
		return b.shardList()[0]
	}
	return b.slots[slotOf(string(ch))]
}

func (b *Redis) writeCounts(ctx context.Context, chs []wire.Channel, counts []int) error {
	ttl := strconv.FormatInt(b.cfg.CountTTL.Milliseconds(), 10)
	loaded := false
	for i := 0; i < len(chs); {
		end := min(i+b.cfg.Batch, len(chs))
		pipe := b.cfg.Client.Pipeline()
		for j := i; j < end; j++ {
			setCountScript.EvalSha(ctx, pipe, []string{chs[j].CountKey()}, b.cfg.InstanceID, counts[j], ttl)
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			i = end
		} else if redis.HasErrorPrefix(err, "NOSCRIPT") && !loaded {
			// First use on this Redis, or it restarted: load, then redo the batch.
			if err := setCountScript.Load(ctx, b.cfg.Client).Err(); err != nil {
				return fmt.Errorf("bus: load count script: %w", err)
			}
			loaded = true
		} else {
			return fmt.Errorf("bus: write counts: %w", err)
		}
	}
	return nil
}

func strs(chs []wire.Channel) []string {
	out := make([]string, len(chs))
	for i, ch := range chs {
		out[i] = string(ch)
	}
	return out
}
