package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/wire"
)

// A notice published by pub's bus reaches every sub instance that reads its
// channel, byte for byte, and receivedUsers counts the subscriptions of all
// of them.
func TestPublishReachesEveryInstanceAndCountsThem(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		inA, inB := newInbox(), newInbox()
		a, b := instance(t, d, inA), instance(t, d, inB)
		pub := instance(t, d, nil)
		ch, _ := wire.PersonChannel("acme", "bob")
		other, _ := wire.PersonChannel("acme", "alice")
		ctx := context.Background()

		if got := publish(t, pub, ch, "nobody yet"); got != 0 {
			t.Fatalf("receivedUsers with no subscriber = %d", got)
		}
		for _, s := range []*bus.Redis{a, a, b} {
			if err := s.Subscribe(ctx, []wire.Channel{ch}); err != nil {
				t.Fatal(err)
			}
		}
		m, _ := wire.NewMessage("hello", wire.ScopePerson, time.Unix(1_800_000_000, 0))
		payload, _ := m.Encode()
		res, err := pub.Publish(ctx, ch, payload)
		if err != nil || res.Receivers != 3 {
			t.Fatalf("Publish = %+v, %v; want 3 receivers (two on a, one on b)", res, err)
		}
		waitFor(t, "both instances", func() bool { return inA.count(ch) == 1 && inB.count(ch) == 1 })
		if got := inA.got(ch)[0]; got != string(payload) {
			t.Fatalf("instance a got %q, want %q", got, payload)
		}
		if inA.count(other) != 0 || inB.count(other) != 0 {
			t.Fatal("a channel nobody subscribed delivered something")
		}
	})
}

func TestSubscribeIsLiveAndCountedWhenItReturns(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		in := newInbox()
		b := instance(t, d, in)
		ch, _ := wire.PersonChannel("acme", "bob")
		ctx := context.Background()

		if err := b.Subscribe(ctx, []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		if got := publish(t, b, ch, "one"); got != 1 {
			t.Fatalf("count after first Subscribe = %d, want 1", got)
		}
		if err := b.Subscribe(ctx, []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		if got := publish(t, b, ch, "two"); got != 2 {
			t.Fatalf("count after second Subscribe = %d, want 2", got)
		}
		waitFor(t, "both messages", func() bool { return in.count(ch) == 2 })

		b.Unsubscribe([]wire.Channel{ch})
		waitFor(t, "count 1", func() bool { return publish(t, b, ch, "probe") == 1 })
		if chs := subscribedChannels(t, d); len(chs) != 1 {
			t.Fatalf("channels %v, want still subscribed", chs)
		}
		b.Unsubscribe([]wire.Channel{ch})
		waitFor(t, "unsubscribed", func() bool { return len(subscribedChannels(t, d)) == 0 })
		rdb := d.client()
		defer rdb.Close()
		if n, _ := rdb.Exists(ctx, ch.CountKey()).Result(); n != 0 {
			t.Fatal("count key left behind")
		}
	})
}

// A subscription's channels become live and counted together.
func TestSubscribeSeveralChannelsAtOnce(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instance(t, d, newInbox())
		person, _ := wire.PersonChannel("acme", "bob")
		company, _ := wire.NewChannel("acme", wire.ScopeCompany, "")
		store, _ := wire.NewChannel("acme", wire.ScopeStore, "s1")
		chs := []wire.Channel{person, company, store, wire.PublicChannel()}
		if err := b.Subscribe(context.Background(), chs); err != nil {
			t.Fatal(err)
		}
		for _, ch := range chs {
			if got := publish(t, b, ch, "x"); got != 1 {
				t.Fatalf("%s: count %d right after Subscribe, want 1", ch, got)
			}
		}
		b.Unsubscribe(chs)
		waitFor(t, "all gone", func() bool { return len(subscribedChannels(t, d)) == 0 })
	})
}

// roundTrips counts what a client sends to Redis: one per command, one per
// pipeline.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// calls is how many times Redis ran cmd since its stats were reset
// (INFO commandstats), summed over the masters: one SUBSCRIBE command
// counts once, however many channels it names.
func calls(t *testing.T, d deployment, cmd string) int {
	t.Helper()
	total := 0
	for _, m := range d.masters() {
		rdb := m.Client()
		info, err := rdb.Info(context.Background(), "commandstats").Result()
		rdb.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				total += n
			}
		}
	}
	return total
}

// resetStats resets every master's INFO stats.
func resetStats(t *testing.T, d deployment) {
	t.Helper()
	for _, m := range d.masters() {
		rdb := m.Client()
		err := rdb.ConfigResetStat(context.Background()).Err()
		rdb.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A burst of subscribers costs a few batched commands, not one round trip
// each: 3,000 concurrent Subscribes are confirmed and counted in a few
// dozen SUBSCRIBE commands and count pipelines (about 25 measured), and
// leave in a few dozen UNSUBSCRIBEs at most. On a cluster one SSUBSCRIBE carries one
// slot's channels (Redis refuses more), so there the SSUBSCRIBEs are at
// most one per slot and the count pipelines as few.
func TestManyChannelsBatched(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		sent := &roundTrips{}
		// The bus's count writes go through its client.
		b := instance(t, d, newInbox(), func(c *bus.Config) { c.Client.AddHook(sent) })
		ctx := context.Background()
		resetStats(t, d)
		const n, most = 3000, 60 // at least 50 subscriptions per round trip
		chs := make([]wire.Channel, 0, n)
		if d.sharded() {
			// Users whose channels share 30 slots (100 each), so that one
			// SSUBSCRIBE per slot and round is told apart from one per
			// channel.
			perSlot := map[int]int{}
			for i := 0; len(chs) < n; i++ {
				ch, _ := wire.PersonChannel("acme", fmt.Sprint("u", i))
				if sl := bus.SlotOf(string(ch)); perSlot[sl] < n/30 && (perSlot[sl] > 0 || len(perSlot) < 30) {
					perSlot[sl]++
					chs = append(chs, ch)
				}
			}
		} else {
			for i := 0; i < n; i++ {
				ch, _ := wire.PersonChannel("acme", fmt.Sprint("u", i))
				chs = append(chs, ch)
			}
		}
		all := func(f func(ch wire.Channel) error) {
			t.Helper()
			var wg sync.WaitGroup
			errs := make(chan error, n)
			ready := make(chan struct{}) // all at once, as in a burst
			for _, ch := range chs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-ready
					errs <- f(ch)
				}()
			}
			close(ready)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		all(func(ch wire.Channel) error { return b.Subscribe(ctx, []wire.Channel{ch}) })
		if got := subscribedChannels(t, d); len(got) != n {
			t.Fatalf("%d channels subscribed, want %d", len(got), n)
		}
		if d.sharded() {
			slots := map[int]bool{}
			for _, ch := range chs {
				slots[bus.SlotOf(string(ch))] = true
			}
			subs, counts := calls(t, d, "ssubscribe"), sent.n.Load()
			t.Logf("%d subscriptions in %d slots: %d SSUBSCRIBE commands, %d count round trips", n, len(slots), subs, counts)
			// A slot's channels may arrive over several rounds: one
			// command per slot and round, far under one per channel.
			if subs > len(slots)*most/10+len(d.masters()) || counts > most {
				t.Fatalf("%d subscriptions in %d slots took %d SSUBSCRIBE commands and %d count round trips; want at most one per slot and round (and the probes) and %d", n, len(slots), subs, counts, most)
			}
			all(func(ch wire.Channel) error { b.Unsubscribe([]wire.Channel{ch}); return nil })
			waitFor(t, "every channel unsubscribed", func() bool { return len(subscribedChannels(t, d)) == 0 })
			// A slot's channels may leave over several rounds.
			if unsubs := calls(t, d, "sunsubscribe"); unsubs > len(slots)*most/10 {
				t.Fatalf("%d unsubscriptions took %d SUNSUBSCRIBE commands; want at most one per slot and round (%d slots)", n, unsubs, len(slots))
			}
			return
		}
		subs, counts := calls(t, d, "subscribe"), sent.n.Load()
		t.Logf("%d subscriptions: %d SUBSCRIBE commands, %d count round trips", n, subs, counts)
		if subs+int(counts) > most {
			t.Fatalf("%d subscriptions took %d SUBSCRIBE commands and %d count round trips; want them batched, at most %d in all", n, subs, counts, most)
		}

		all(func(ch wire.Channel) error { b.Unsubscribe([]wire.Channel{ch}); return nil })
		waitFor(t, "every channel unsubscribed", func() bool { return len(subscribedChannels(t, d)) == 0 })
		// Under CI's load the goroutines reach the bus more spread out than
		// here (41 UNSUBSCRIBEs once in CI, 7 or 8 here): at least 50 a command.
		unsubs := calls(t, d, "unsubscribe")
		t.Logf("%d unsubscriptions: %d UNSUBSCRIBE commands", n, unsubs)
		if unsubs > most {
			t.Fatalf("%d unsubscriptions took %d UNSUBSCRIBE commands; want them batched, at most %d", n, unsubs, most)
		}
	})
}

// A rewrite of every count (the periodic refresh, or after a reconnect)
// goes a part at a time between rounds of new work: a subscription that
// arrives while 20,000 counts are being rewritten is live without waiting
// for all of them, and the rewrite then finishes.
func TestRewriteOfEveryCountYieldsToNewSubscriptions(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		in := newInbox()
		b := instance(t, d, in, func(c *bus.Config) { c.CountTTL = 10 * time.Minute })
		pub := instance(t, d, nil)
		ctx := context.Background()
		const n = 20000
		chs := make([]wire.Channel, n)
		for i := range chs {
			chs[i], _ = wire.PersonChannel("acme", fmt.Sprint("u", i))
		}
		if err := b.Subscribe(ctx, chs); err != nil {
			t.Fatal(err)
		}
		// Counts gone from Redis (as after a restart): only the rewrite
		// brings them back.
		deleteCounts(t, d)
		bus.RequestResync(b)
		late, _ := wire.PersonChannel("acme", "late")
		if err := b.Subscribe(ctx, []wire.Channel{late}); err != nil {
			t.Fatal(err)
		}
		left := bus.RefreshPending(b)
		t.Logf("the new subscription was live with %d counts of the rewrite still to write (%d channels)", left, n+1)
		if left == 0 {
			t.Fatal("the new subscription waited for the whole rewrite of every count")
		}
		if got := publish(t, pub, late, "late"); got != 1 {
			t.Fatalf("receivedUsers for the new subscription = %d, want 1", got)
		}
		// Nothing left to take is not yet written: the last part may still
		// be on its way to Redis.
		waitFor(t, "the rewrite to finish", func() bool { return bus.RefreshPending(b) == 0 && len(countKeys(t, d)) == n+1 })
		for _, i := range []int{0, n / 2, n - 1} {
			if got := publish(t, pub, chs[i], "after"); got != 1 {
				t.Fatalf("receivedUsers for %s after the rewrite = %d, want 1", chs[i], got)
			}
		}
	})
}

// After Redis restarts (empty: no scripts, no counts, no subscriptions),
// the subscriber side re-subscribes and rewrites every count at once, not
// at the next periodic refresh (with COUNT_TTL at 10 minutes that is 200s
// away), and the publisher reloads its script.
func TestRedisRestartRestoresSubscriptionsAndCounts(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		in := newInbox()
		b := instance(t, d, in, func(c *bus.Config) { c.CountTTL = 10 * time.Minute })
		pub := instance(t, d, nil)
		ch, _ := wire.PersonChannel("acme", "phoenix")
		if err := b.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		d.stop()
		waitFor(t, "unhealthy", func() bool { return !b.Healthy() })
		if _, err := tryPublish(pub, ch, "into the void"); !errors.Is(err, bus.ErrUnavailable) {
			t.Fatalf("publish with redis down: %v, want ErrUnavailable", err)
		}
		d.start()
		waitUpTo(t, 10*time.Second, "the count rewritten after the restart (the periodic refresh is 200s away)", func() bool {
			n, err := tryPublish(pub, ch, "again")
			return err == nil && n == 1
		})
		waitFor(t, "message after restart", func() bool { return in.count(ch) >= 1 })
		if !b.Healthy() {
			t.Fatal("not healthy after restart")
		}
	})
}

// Subscriptions that come and go while Redis is down leave Redis, once it
// is back, subscribed to exactly the channels that have subscribers.
func TestViewsAgreeAfterChangesDuringAnOutage(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instance(t, d, newInbox())
		ctx := context.Background()
		stay, _ := wire.PersonChannel("acme", "stay")
		leave, _ := wire.PersonChannel("acme", "leave")
		for _, ch := range []wire.Channel{stay, leave} {
			if err := b.Subscribe(ctx, []wire.Channel{ch}); err != nil {
				t.Fatal(err)
			}
		}
		d.stop()
		waitFor(t, "unhealthy", func() bool { return !b.Healthy() })
		b.Unsubscribe([]wire.Channel{leave})
		late, _ := wire.PersonChannel("acme", "late")
		lateDone := make(chan error, 1)
		go func() { lateDone <- b.Subscribe(ctx, []wire.Channel{late}) }() // waits for Redis
		d.start()
		select {
		case err := <-lateDone:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Subscribe made during the outage did not return after Redis came back")
		}
		waitFor(t, "redis subscribed to exactly stay and late", func() bool {
			chs := subscribedChannels(t, d)
			slices.Sort(chs)
			want := []string{string(late), string(stay)}
			slices.Sort(want)
			return slices.Equal(chs, want)
		})
		waitFor(t, "counts", func() bool {
			return publish(t, b, stay, "x") == 1 && publish(t, b, late, "x") == 1 && publish(t, b, leave, "x") == 0
		})
	})
}

func TestSubscribeWhileRedisIsDownFailsInTime(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instance(t, d, newInbox())
		d.stop()
		ch, _ := wire.PersonChannel("acme", "nobody")
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		err := b.Subscribe(ctx, []wire.Channel{ch})
		if !errors.Is(err, bus.ErrUnavailable) {
			t.Fatalf("Subscribe with redis down: %v", err)
		}
		if b.Channels() != 0 {
			t.Fatal("failed Subscribe left a reference")
		}
		d.start()
		waitFor(t, "healthy", b.Healthy)
		ch2, _ := wire.PersonChannel("acme", "later")
		if err := b.Subscribe(context.Background(), []wire.Channel{ch2}); err != nil {
			t.Fatal(err)
		}
		if got := publish(t, b, ch2, "x"); got != 1 {
			t.Fatalf("count = %d", got)
		}
	})
}

// A Redis that accepts connections and never answers (SIGSTOP): the
// connection is reported down, a subscription and a publish fail by their
// deadlines, and Close returns in bounded time, leaving no goroutine
// behind (TestMain).
func TestFrozenRedis(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instance(t, d, newInbox())
		live, _ := wire.PersonChannel("acme", "bob")
		if err := b.Subscribe(context.Background(), []wire.Channel{live}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "healthy", b.Healthy)

		d.freeze()
		waitFor(t, "the silent connection to count as down", func() bool { return !b.Healthy() })

		ch, _ := wire.PersonChannel("acme", "carol")
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := b.Subscribe(ctx, []wire.Channel{ch}); !errors.Is(err, bus.ErrUnavailable) {
			t.Fatalf("Subscribe with a frozen redis: %v", err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("Subscribe with a 300ms deadline took %s", took)
		}
		start = time.Now()
		if _, err := b.Publish(ctx, live, []byte(`{}`)); !errors.Is(err, bus.ErrUnavailable) {
			t.Fatalf("Publish with a frozen redis: %v", err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("Publish past its deadline took %s", took)
		}

		// A subscription with no deadline of its own, waiting when the bus
		// closes: Close answers it (no round runs any more to do so).
		dave, _ := wire.PersonChannel("acme", "dave")
		waiting := make(chan error, 1)
		go func() { waiting <- b.Subscribe(context.Background(), []wire.Channel{dave}) }()
		time.Sleep(50 * time.Millisecond)

		start = time.Now()
		if err := b.Close(); err != nil {
			t.Logf("Close: %v", err)
		}
		if took := time.Since(start); took > 4*time.Second {
			t.Fatalf("Close with a frozen redis took %s", took)
		}
		select {
		case err := <-waiting:
			if !errors.Is(err, bus.ErrClosed) || !errors.Is(err, errkind.ErrUnavailable) {
				t.Fatalf("Subscribe waiting at Close: %v, want ErrClosed, an UNAVAILABLE", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Subscribe waiting at Close still waits after it")
		}
	})
}

// A subscription that ends just before Close — as every one does at
// shutdown, when the sockets close first — leaves no count behind, even
// when Close comes before the round that would have written it.
func TestCloseRemovesCountsOfJustEndedSubscriptions(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		pub := instance(t, d, nil)
		for i := range 20 {
			b := instance(t, d, newInbox())
			ch, _ := wire.PersonChannel("acme", fmt.Sprint("bob-", i))
			if err := b.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
				t.Fatal(err)
			}
			b.Unsubscribe([]wire.Channel{ch})
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if got := publish(t, pub, ch, "after close"); got != 0 {
				t.Fatalf("round %d: count after Unsubscribe and Close = %d, want 0", i, got)
			}
		}
	})
}

// Without ContextTimeoutEnabled no deadline would hold: refused.
func TestClientMustHonourDeadlines(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	_, err := bus.NewRedis(bus.Config{Client: rdb})
	if err == nil {
		t.Fatal("NewRedis took a client without ContextTimeoutEnabled")
	}
}

func TestCloseRemovesCounts(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instance(t, d, newInbox())
		pub := instance(t, d, nil)
		ch, _ := wire.PersonChannel("acme", "bob")
		if err := b.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if got := publish(t, pub, ch, "after close"); got != 0 {
			t.Fatalf("count after Close = %d, want 0", got)
		}
		if err := b.Subscribe(context.Background(), []wire.Channel{ch}); !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
		}
	})
}

func TestCrashedInstanceCountExpires(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		pub := instance(t, d, nil)
		rdb := d.client()
		defer rdb.Close()
		ch, _ := wire.PersonChannel("acme", "bob")
		// An instance that died without cleaning up left a count with 300ms to live.
		if err := bus.SetCountScript.Run(context.Background(), rdb, []string{ch.CountKey()}, "dead-instance", 5, 300).Err(); err != nil {
			t.Fatal(err)
		}
		if got := publish(t, pub, ch, "x"); got != 5 {
			t.Fatalf("count = %d, want 5", got)
		}
		time.Sleep(400 * time.Millisecond)
		if got := publish(t, pub, ch, "y"); got != 0 {
			t.Fatalf("expired count still answered: %d", got)
		}
	})
}

// A publish-only bus (pub's) holds no Pub/Sub connection and refuses to
// subscribe.
func TestPublishOnlyBus(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		pub := instance(t, d, nil)
		ch, _ := wire.PersonChannel("acme", "bob")
		if err := pub.Subscribe(context.Background(), []wire.Channel{ch}); !errors.Is(err, bus.ErrPublishOnly) {
			t.Fatalf("Subscribe on a publish-only bus: %v", err)
		}
		rdb := d.client()
		defer rdb.Close()
		if chs := subscribedChannels(t, d); len(chs) != 0 {
			t.Fatalf("publish-only bus subscribed %v", chs)
		}
		if got := publish(t, pub, ch, "x"); got != 0 {
			t.Fatalf("count = %d", got)
		}
	})
}

// CountTTL bounds how long a count outlives its instance: as configured,
// and 30s when left zero. A bus whose other settings are zero too (their
// defaults apply) subscribes and delivers.
func TestCountTTLAsConfigured(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		rdb := d.client()
		defer rdb.Close()
		for _, tc := range []struct {
			ttl      time.Duration
			min, max time.Duration
		}{
			{3 * time.Second, time.Second, 3 * time.Second},
			{0, 20 * time.Second, 30 * time.Second},
		} {
			in := newInbox()
			b := instance(t, d, in, func(c *bus.Config) {
				c.CountTTL = tc.ttl
				if tc.ttl == 0 {
					c.HealthInterval, c.Batch = 0, 0
				}
			})
			ch, _ := wire.PersonChannel("acme", fmt.Sprint("ttl-", tc.ttl))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := b.Subscribe(ctx, []wire.Channel{ch}); err != nil {
				cancel()
				t.Fatal(err)
			}
			cancel()
			got, err := rdb.PTTL(context.Background(), ch.CountKey()).Result()
			if err != nil || got < tc.min || got > tc.max {
				t.Fatalf("CountTTL %v: the count key lives %v (%v), want %v..%v", tc.ttl, got, err, tc.min, tc.max)
			}
			if n := publish(t, b, ch, "x"); n != 1 {
				t.Fatalf("CountTTL %v: publish reached %d, want 1", tc.ttl, n)
			}
			waitFor(t, "delivery", func() bool { return in.count(ch) == 1 })
		}
	})
}
