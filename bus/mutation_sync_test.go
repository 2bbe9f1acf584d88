package bus_test

// Tests of the sync loop (sync.go, subscribe.go) aimed at mutants that
// survived `make mutation PKGS=bus` (docs/mutation.md), against real
// redis-servers.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/wire"
)

// A live subscription's count is rewritten every CountTTL/3, well before
// it expires: receivedUsers stays right for many CountTTLs.
func TestCountsRefreshedBeforeTheyExpire(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		const ttl = 2 * time.Second
		b := instance(t, d, newInbox(), func(c *bus.Config) { c.CountTTL = ttl })
		pub := instance(t, d, nil)
		ch, _ := wire.PersonChannel("acme", "refreshed")
		if err := b.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for time.Since(start) < 2*ttl {
			if n := publish(t, pub, ch, "still counted?"); n != 1 {
				t.Fatalf("%v after Subscribe (CountTTL %v): receivedUsers %d, want 1: the count was not refreshed in time", time.Since(start).Round(time.Millisecond), ttl, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// A round that fails (Redis down) is retried every 500ms, not in a busy
// loop.
func TestFailedRoundsRetryPaced(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		edit := func(*bus.Config) {}
		if s, ok := d.(single); ok {
			// A client that fails at once when Redis is down: go-redis's
			// own dial retries (5, 100ms apart) and command retries would
			// pace a busy loop of failing rounds as well.
			rdb := redis.NewClient(&redis.Options{Addr: s.srv.Addr, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
			t.Cleanup(func() { rdb.Close() })
			edit = func(c *bus.Config) { c.Client = rdb }
		}
		b := instance(t, d, newInbox(), edit)
		ch, _ := wire.PersonChannel("acme", "paced")
		if err := b.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		d.stop()
		// The count of the ended subscription cannot be removed: every
		// round fails at once, and is retried.
		b.Unsubscribe([]wire.Channel{ch})
		waitFor(t, "a failed round", func() bool { return b.SyncFailures() > 0 })
		const window = 2 * time.Second
		before := b.SyncFailures()
		time.Sleep(window) // a rate is measured over a time
		failed := b.SyncFailures() - before
		if most := int64(window/(500*time.Millisecond)) + 3; failed > most {
			t.Fatalf("%d failed rounds in %v; want retries 500ms apart (at most %d)", failed, window, most)
		}
		if failed == 0 {
			t.Fatalf("no round retried in %v", window)
		}
	})
}

// A Subscribe given up before its round ran (its context was already
// done) leaves nothing behind: its channel is never subscribed in Redis
// and never counted, and the bus holds no reference to it.
func TestAbandonedSubscribeLeavesNothingInRedis(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instance(t, d, newInbox())
		pub := instance(t, d, nil)
		gone, _ := wire.PersonChannel("acme", "gone")
		done, cancel := context.WithCancel(context.Background())
		cancel()
		if err := b.Subscribe(done, []wire.Channel{gone}); err == nil {
			// The round ran first (rare): it was subscribed, as asked; once
			// unsubscribed, the same must hold of it below.
			b.Unsubscribe([]wire.Channel{gone})
		}
		// A later subscription's round has taken up whatever the
		// abandoned one left.
		stay, _ := wire.PersonChannel("acme", "stay")
		if err := b.Subscribe(context.Background(), []wire.Channel{stay}); err != nil {
			t.Fatal(err)
		}
		if chs := subscribedChannels(t, d); len(chs) != 1 || chs[0] != string(stay) {
			t.Fatalf("Redis has subscribers for %v, want only %s", chs, stay)
		}
		if n := publish(t, pub, gone, "x"); n != 0 {
			t.Fatalf("the abandoned channel is counted: receivedUsers %d", n)
		}
		if n := b.Channels(); n != 1 {
			t.Fatalf("Channels() = %d, want 1", n)
		}
	})
}

// Subscribe returns only once Redis has confirmed the SUBSCRIBE: on a
// Pub/Sub connection that stopped delivering (a proxy forwards nothing
// back from Redis) a new subscription fails by its deadline, uncounted.
// Its unsubscription drops the confirmation it waited for, so once the
// probe has replaced the connection the same channel subscribes again.
func TestSubscribeWaitsForRedisToConfirm(t *testing.T) {
	onlyOn(t, "single")
	srv := redistest.Start(t)
	proxy, rdb := proxiedClient(t, srv)
	in := newInbox()
	sub := instanceWith(t, single{srv}, in, func(c *bus.Config) {
		c.Client = rdb
		c.CountTTL = 900 * time.Millisecond // a round waits 300ms for confirmations
		c.ProbeInterval, c.ProbeTimeout = 300*time.Millisecond, 3*time.Second
		c.HealthInterval = time.Hour // only the probe may notice
	})
	pub := instance(t, single{srv}, nil)
	ctx := context.Background()
	first, _ := wire.PersonChannel("acme", "first")
	late, _ := wire.PersonChannel("acme", "late")
	if err := sub.Subscribe(ctx, []wire.Channel{first}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return sub.Ready(ctx) == nil })
	proxy.Silence()
	time.Sleep(100 * time.Millisecond) // past ConnMaxLifetime: the pool redials
	short, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
	err := sub.Subscribe(short, []wire.Channel{late})
	cancel()
	if !errors.Is(err, bus.ErrUnavailable) {
		t.Fatalf("Subscribe with its SUBSCRIBE unconfirmed: %v, want ErrUnavailable", err)
	}
	if n := publish(t, pub, late, "x"); n != 0 {
		t.Fatalf("an unconfirmed subscription is counted: receivedUsers %d", n)
	}
	// Redis got the SUBSCRIBE, then the UNSUBSCRIBE of the failed
	// subscription (only Redis's answers are held back).
	waitFor(t, "the UNSUBSCRIBE", func() bool {
		chs := subscribedChannels(t, single{srv})
		return len(chs) == 1 && chs[0] == string(first)
	})
	if sub.Replaced() != 0 {
		t.Fatal("the connection was replaced before the failed subscription ended (the machine is too slow for this test's 3s probe timeout)")
	}
	waitUpTo(t, 15*time.Second, "a new connection, ready", func() bool { return sub.Replaced() > 0 && sub.Ready(ctx) == nil })
	again, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sub.Subscribe(again, []wire.Channel{late}); err != nil {
		t.Fatalf("Subscribe on the new connection: %v", err)
	}
	if n := publish(t, pub, late, "y"); n != 1 {
		t.Fatalf("receivedUsers %d, want 1", n)
	}
	waitFor(t, "delivery", func() bool { return in.count(late) == 1 })
}

// A round waits for SUBSCRIBE confirmations up to CountTTL/3, then fails
// (and is retried): a subscription whose confirmation never comes sees
// rounds fail while it waits.
func TestRoundGivesUpAfterAThirdOfCountTTL(t *testing.T) {
	onlyOn(t, "single")
	srv := redistest.Start(t)
	proxy, rdb := proxiedClient(t, srv)
	sub := instanceWith(t, single{srv}, newInbox(), func(c *bus.Config) {
		c.Client = rdb
		c.CountTTL = 1500 * time.Millisecond // a round waits 500ms
		// Probes may fail, not replace the connection, within the test.
		c.ProbeInterval, c.ProbeTimeout = 300*time.Millisecond, 10*time.Second
		c.HealthInterval = time.Hour
	})
	ctx := context.Background()
	waitFor(t, "ready", func() bool { return sub.Ready(ctx) == nil })
	proxy.Silence()
	ch, _ := wire.PersonChannel("acme", "unconfirmed")
	before := sub.SyncFailures()
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := sub.Subscribe(short, []wire.Channel{ch}); !errors.Is(err, bus.ErrUnavailable) {
		t.Fatalf("Subscribe with its SUBSCRIBE unconfirmed: %v, want ErrUnavailable", err)
	}
	// Rounds failed at about 0.5s and 1.5s (and 2.5s): 500ms each, 500ms
	// apart.
	if failed := sub.SyncFailures() - before; failed < 1 {
		t.Fatalf("no round failed in the 3s the subscription waited; want each to give up after CountTTL/3 (500ms)")
	}
}

// A change of the wanted state runs a round at once, not at the next
// count refresh (CountTTL/3, here 20s away).
func TestSubscribeRunsARoundAtOnce(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instance(t, d, newInbox(), func(c *bus.Config) { c.CountTTL = time.Minute })
		ctx := context.Background()
		waitFor(t, "ready", func() bool { return b.Ready(ctx) == nil })
		ch, _ := wire.PersonChannel("acme", "prompt")
		short, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := b.Subscribe(short, []wire.Channel{ch}); err != nil {
			t.Fatalf("Subscribe: %v; want its round run at once", err)
		}
	})
}

// A round of new subscriptions that runs between two parts of a rewrite
// of every count wakes the loop for the next part: the part it
// interrupted could not (its wake-up found one pending already, the
// subscription's own, which that round then took), so without it the
// rewrite would stop there until the next refresh (CountTTL/3, here 200s
// away), and the counts not yet written stay missing.
func TestRewriteGoesOnAfterARoundBetweenItsParts(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instance(t, d, newInbox(), func(c *bus.Config) { c.CountTTL = 10 * time.Minute })
		pub := instance(t, d, nil)
		ctx := context.Background()
		const n = 10000 // five parts
		chs := make([]wire.Channel, n)
		for i := range chs {
			chs[i], _ = wire.PersonChannel("acme", fmt.Sprint("u", i))
		}
		if err := b.Subscribe(ctx, chs); err != nil {
			t.Fatal(err)
		}
		// Counts gone from Redis (as after a restart), and a rewrite
		// under way: a part written, more to come.
		underWay := false
		for try := 0; try < 5 && !underWay; try++ {
			deleteCounts(t, d)
			bus.RequestResync(b)
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if left := bus.RefreshPending(b); left > 0 && left < n {
					underWay = true
					break
				}
			}
		}
		if !underWay {
			t.Fatal("no rewrite seen under way")
		}
		late, _ := wire.PersonChannel("acme", "late")
		if err := b.Subscribe(ctx, []wire.Channel{late}); err != nil {
			t.Fatal(err)
		}
		// Every count written again (the last part is still being written
		// when none is left to take).
		waitFor(t, "the rewrite to finish", func() bool { return len(countKeys(t, d)) == n+1 })
		for _, ch := range []wire.Channel{chs[0], chs[n-1], late} {
			if got := publish(t, pub, ch, "after"); got != 1 {
				t.Fatalf("receivedUsers for %s after the rewrite = %d, want 1", ch, got)
			}
		}
	})
}

// countKeys lists the count keys in Redis.
func countKeys(t *testing.T, d deployment) []string {
	t.Helper()
	var all []string
	for _, m := range d.masters() {
		rdb := m.Client()
		keys, err := rdb.Keys(context.Background(), "oshirase:v1:count:*").Result()
		rdb.Close()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, keys...)
	}
	return all
}

// deleteCounts removes every count from Redis, as a restart does.
func deleteCounts(t *testing.T, d deployment) {
	t.Helper()
	ctx := context.Background()
	for _, m := range d.masters() {
		rdb := m.Client()
		keys, err := rdb.Keys(ctx, "oshirase:v1:count:*").Result()
		if err == nil && len(keys) > 0 {
			pipe := rdb.Pipeline() // one key a command: a cluster node refuses keys of several slots
			for _, k := range keys {
				pipe.Unlink(ctx, k)
			}
			_, err = pipe.Exec(ctx)
		}
		rdb.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}
