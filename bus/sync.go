package bus

import (
	"context"
	"fmt"
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
		}
		if err := b.runRound(); err != nil {
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

func (b *Redis) runRound() error {
	b.mu.Lock()
	if len(b.dirty) == 0 && !b.resync {
		b.mu.Unlock()
		return nil
	}
	r := b.next
	b.next = newRound()
	dirty := b.dirty
	b.dirty = map[wire.Channel]struct{}{}
	full := b.resync
	b.resync = false
	var toSub, toUnsub, counted []wire.Channel
	var counts []int
	for ch := range dirty {
		n := b.refs[ch]
		if n > 0 && !b.inRedis[ch] {
			toSub = append(toSub, ch)
			b.inRedis[ch] = true
		} else if n == 0 && b.inRedis[ch] {
			toUnsub = append(toUnsub, ch)
			delete(b.inRedis, ch)
		}
		if !full {
			counted = append(counted, ch)
			counts = append(counts, n)
		}
	}
	if full {
		for ch, n := range b.refs {
			counted = append(counted, ch)
			counts = append(counts, n)
		}
		for ch := range dirty {
			if b.refs[ch] == 0 {
				counted = append(counted, ch)
				counts = append(counts, 0)
			}
		}
	}
	b.mu.Unlock()

	err := b.apply(toSub, toUnsub, counted, counts)
	if err != nil {
		b.mu.Lock()
		for ch := range dirty {
			b.dirty[ch] = struct{}{}
		}
		b.resync = b.resync || full
		b.mu.Unlock()
	}
	r.err = err
	close(r.done)
	return err
}

func (b *Redis) apply(toSub, toUnsub, counted []wire.Channel, counts []int) error {
	ctx, cancel := context.WithTimeout(b.stopCtx, b.cfg.CountTTL/3)
	defer cancel()
	// SUBSCRIBE / UNSUBSCRIBE errors need no handling here: go-redis keeps
	// its own set of channels (updated even when the write fails) and
	// re-subscribes to exactly that set whenever it reconnects.
	b.expect(toSub)
	for _, part := range chunks(toSub, b.cfg.Batch) {
		_ = b.ps.Subscribe(ctx, strs(part)...)
	}
	b.forget(toUnsub)
	for _, part := range chunks(toUnsub, b.cfg.Batch) {
		_ = b.ps.Unsubscribe(ctx, strs(part)...)
	}
	// Wait for every counted channel, not only the new ones: a channel whose
	// confirmation a failed round never saw must not be reported live.
	if err := b.awaitConfirmed(ctx, counted); err != nil {
		return err
	}
	// Counts promise delivery, so they are written only while the Pub/Sub
	// connection is up. After a reconnect it turns healthy on the first
	// reply, which follows go-redis's one SUBSCRIBE of every channel: by
	// then Redis has all of them.
	if !b.Healthy() {
		return fmt.Errorf("%w: pub/sub connection is down", ErrUnavailable)
	}
	return b.writeCounts(ctx, counted, counts)
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

func chunks(s []wire.Channel, n int) [][]wire.Channel {
	var out [][]wire.Channel
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

func strs(chs []wire.Channel) []string {
	out := make([]string, len(chs))
	for i, ch := range chs {
		out[i] = string(ch)
	}
	return out
}
