package bus_test

import (
	"context"
	"errors"
	"fmt"
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

// idemNotice is a fresh notice with text to ch under an idempotency key;
// the fingerprint is the text, which is all that differs in these tests.
func idemNotice(t *testing.T, ch wire.Channel, key, text string, ttl time.Duration) bus.Notice {
	t.Helper()
	m, err := wire.NewMessage(text, wire.ScopePerson, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := m.Encode()
	return bus.Notice{Channel: ch, Payload: payload, Idempotency: &bus.Idempotency{
		Key: ch.IdempotencyKey("cred", key), Fingerprint: "fp:" + text, ID: m.ID, TS: m.TS, TTL: ttl,
	}}
}

func publishOne(t *testing.T, p bus.BatchPublisher, n bus.Notice) bus.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.PublishBatch(ctx, []bus.Notice{n})[0]
}

// Every key publish.lua touches for one notice carries the channel's hash
// tag, so the script runs in one slot of a Redis Cluster.
func TestPublishKeysShareTheChannelsSlot(t *testing.T) {
	ch, _ := wire.NewChannel("a}c{me", wire.ScopeStore, "s{1}")
	tag := func(key string) string {
		i := strings.IndexByte(key, '{')
		j := strings.IndexByte(key[i+1:], '}')
		return key[i : i+1+j+1]
	}
	want := tag(string(ch))
	for _, k := range []string{ch.CountKey(), ch.HistoryKey(), ch.MetaKey(), ch.IdempotencyKey("0a1b", "k{e}y:1")} {
		if got := tag(k); got != want {
			t.Errorf("%s: hash tag %s, want %s", k, got, want)
		}
	}
}

// A retry with the same key publishes nothing and answers the first
// publish: the same receivers, message id, time and history position.
func TestIdempotentRetryAnswersTheFirstPublish(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		for _, history := range []int{0, 100} {
			t.Run(fmt.Sprint("history ", history), func(t *testing.T) {
				in := newInbox()
				sub := instance(t, d, in)
				pub := instance(t, d, nil, withHistory(history, time.Hour))
				ch, _ := wire.PersonChannel("acme", fmt.Sprint("bob", history))
				if err := sub.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
					t.Fatal(err)
				}
				first := publishOne(t, pub, idemNotice(t, ch, "order-7", "shipped", time.Hour))
				if first.Err != nil || first.Repeat || first.Receivers != 1 || first.ID == "" || first.TS == 0 {
					t.Fatalf("first publish: %+v", first)
				}
				if (history > 0) == first.Pos.ID.IsZero() {
					t.Fatalf("first publish at %+v with history %d", first.Pos, history)
				}
				// The retry is a new message (new id, later time), as a client's
				// second request would be.
				time.Sleep(2 * time.Millisecond)
				again := publishOne(t, pub, idemNotice(t, ch, "order-7", "shipped", time.Hour))
				if again.Err != nil || !again.Repeat || again.Published != first.Published || again.ID != first.ID || again.TS != first.TS {
					t.Fatalf("retry %+v, want the first publish %+v", again, first)
				}
				// A later notice on the channel arrives after exactly one copy.
				publish(t, pub, ch, "marker")
				waitFor(t, "the marker", func() bool { return in.count(ch) >= 2 })
				if got := in.got(ch); len(got) != 2 || !strings.Contains(got[0], first.ID) {
					t.Fatalf("delivered %q, want the first notice once, then the marker", got)
				}
			})
		}
	})
}

// The same key for another notice is refused and publishes nothing; a key
// is its publisher's: another credential's same key is another publish.
func TestIdempotencyKeyForAnotherNoticeIsRefused(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		in := newInbox()
		sub := instance(t, d, in)
		pub := instance(t, d, nil, withHistory(100, time.Hour))
		ch, _ := wire.PersonChannel("acme", "carol")
		if err := sub.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		first := publishOne(t, pub, idemNotice(t, ch, "k", "one text", time.Hour))
		if first.Err != nil {
			t.Fatal(first.Err)
		}
		other := publishOne(t, pub, idemNotice(t, ch, "k", "another text", time.Hour))
		if !errors.Is(other.Err, bus.ErrIdempotencyConflict) || !errors.Is(other.Err, errkind.ErrBadInput) || other.Receivers != 0 || other.ID != "" {
			t.Fatalf("same key, other text: %+v", other)
		}
		n := idemNotice(t, ch, "k", "another text", time.Hour)
		n.Idempotency.Key = ch.IdempotencyKey("another-cred", "k")
		if o := publishOne(t, pub, n); o.Err != nil || o.Repeat {
			t.Fatalf("another credential's key: %+v", o)
		}
		waitFor(t, "two notices", func() bool { return in.count(ch) >= 2 })
		publish(t, pub, ch, "marker")
		waitFor(t, "the marker", func() bool { return in.count(ch) >= 3 })
		if got := in.got(ch); len(got) != 3 || !strings.Contains(got[0], `"one text"`) || !strings.Contains(got[1], `"another text"`) {
			t.Fatalf("delivered %q", got)
		}
	})
}

// 50 concurrent publishes with one key: exactly one goes out, and all 50
// answer the same.
func TestConcurrentIdempotentPublishesDeliverOnce(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		in := newInbox()
		sub := instance(t, d, in)
		pub := instance(t, d, nil, withHistory(100, time.Hour))
		ch, _ := wire.PersonChannel("acme", "dave")
		if err := sub.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		const callers = 50
		outs := make([]bus.Outcome, callers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := idemNotice(t, ch, "one-key", "once", time.Hour)
				<-start
				outs[i] = publishOne(t, pub, n)
			}()
		}
		close(start)
		wg.Wait()
		firsts := 0
		for i, o := range outs {
			if o.Err != nil {
				t.Fatalf("call %d: %v", i, o.Err)
			}
			if !o.Repeat {
				firsts++
			}
			if o.Published != outs[0].Published || o.ID != outs[0].ID || o.TS != outs[0].TS {
				t.Fatalf("call %d answered %+v, call 0 %+v", i, o, outs[0])
			}
		}
		if firsts != 1 {
			t.Fatalf("%d calls published, want 1", firsts)
		}
		publish(t, pub, ch, "marker")
		waitFor(t, "the marker", func() bool { return in.count(ch) >= 2 })
		if got := in.count(ch); got != 2 {
			t.Fatalf("%d messages delivered, want the notice once and the marker", got)
		}
	})
}

// After its TTL a key is forgotten: the same key publishes again.
func TestIdempotencyKeyExpires(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		in := newInbox()
		sub := instance(t, d, in)
		pub := instance(t, d, nil)
		ch, _ := wire.PersonChannel("acme", "erin")
		if err := sub.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		first := publishOne(t, pub, idemNotice(t, ch, "k", "again later", 200*time.Millisecond))
		if first.Err != nil || first.Repeat {
			t.Fatalf("first: %+v", first)
		}
		rdb := d.client()
		defer rdb.Close()
		key := ch.IdempotencyKey("cred", "k")
		if ttl, err := rdb.PTTL(context.Background(), key).Result(); err != nil || ttl <= 0 || ttl > 200*time.Millisecond {
			t.Fatalf("the key's TTL is %s (%v), want at most 200ms", ttl, err)
		}
		waitFor(t, "the key to expire", func() bool { return rdb.Exists(context.Background(), key).Val() == 0 })
		second := publishOne(t, pub, idemNotice(t, ch, "k", "again later", 200*time.Millisecond))
		if second.Err != nil || second.Repeat || second.ID == first.ID {
			t.Fatalf("after expiry: %+v, first %+v", second, first)
		}
		waitFor(t, "two deliveries", func() bool { return in.count(ch) == 2 })
	})
}

// A batch goes out in one pipeline: every notice on its channel with its
// own receivers, also to a Redis that has not loaded the script yet
// (NOSCRIPT, then the script's text), and a failing notice fails alone.
func TestPublishBatchIsOnePipeline(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		in := newInbox()
		sub := instance(t, d, in)
		var pipelines, commands atomic.Int64
		pub := instanceWith(t, d, nil, func(c *bus.Config) {
			c.HistorySize, c.HistoryTTL = 100, time.Hour
			c.Client.AddHook(countingHook{pipelines: &pipelines, commands: &commands})
		})
		ctx := context.Background()
		var chs []wire.Channel
		for i := range 4 {
			ch, _ := wire.PersonChannel("acme", fmt.Sprint("u", i))
			chs = append(chs, ch)
			for range i { // channel i has i subscriptions
				if err := sub.Subscribe(ctx, []wire.Channel{ch}); err != nil {
					t.Fatal(err)
				}
			}
		}
		var notices []bus.Notice
		for i := range 200 {
			m, _ := wire.NewMessage(fmt.Sprint("n", i), wire.ScopePerson, time.Now())
			payload, _ := m.Encode()
			notices = append(notices, bus.Notice{Channel: chs[i%4], Payload: payload})
		}
		// The same key twice in one batch: the second answers the first.
		notices = append(notices, idemNotice(t, chs[3], "k", "keyed", time.Hour), idemNotice(t, chs[3], "k", "keyed", time.Hour))
		bad := idemNotice(t, chs[3], "k2", "no ttl", time.Hour)
		bad.Idempotency.TTL = 0
		notices = append(notices, bad)

		rdb := d.client()
		defer rdb.Close()
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		pipelines.Store(0)
		outs := pub.PublishBatch(ctx, notices)
		// One pipeline, and one more for the NOSCRIPT answers.
		if got := pipelines.Load(); got != 2 {
			t.Fatalf("%d pipelines for a batch on a Redis without the script, want 2", got)
		}
		for i, o := range outs[:200] {
			if o.Err != nil || o.Receivers != i%4 || o.Pos.ID.IsZero() {
				t.Fatalf("notice %d: %+v, want %d receivers and a position", i, o, i%4)
			}
		}
		if k1, k2 := outs[200], outs[201]; k1.Err != nil || k1.Repeat || !k2.Repeat || k2.ID != k1.ID {
			t.Fatalf("one key twice in a batch: %+v, %+v", k1, k2)
		}
		if outs[202].Err == nil {
			t.Fatal("a notice with a zero idempotency TTL was published")
		}
		pipelines.Store(0)
		commands.Store(0)
		outs = pub.PublishBatch(ctx, notices[:200])
		if got := pipelines.Load(); got != 1 {
			t.Fatalf("%d pipelines for a batch, want 1", got)
		}
		// Up to ScriptBatch (100) notices a script call; on a cluster, one
		// channel's only (50 each here).
		wantCalls := int64(200 / bus.ScriptBatch)
		if d.sharded() {
			wantCalls = 4
		}
		if got := commands.Load(); got != wantCalls {
			t.Fatalf("%d script calls for 200 notices, want %d", got, wantCalls)
		}
		for i, o := range outs {
			if o.Err != nil {
				t.Fatalf("notice %d: %v", i, o.Err)
			}
		}
		// 2×50 + 1 keyed on u1, u2 (×1, ×2 subscriptions), u3 (×3).
		waitFor(t, "every delivery", func() bool {
			return in.count(chs[1]) == 100 && in.count(chs[2]) == 100 && in.count(chs[3]) == 101
		})
	})
}

// A batch to a Redis that does not answer fails every notice with
// ErrUnavailable within the caller's deadline.
func TestPublishBatchUnavailable(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		pub := instance(t, d, nil)
		ch, _ := wire.PersonChannel("acme", "frank")
		d.freeze()
		defer d.thaw()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		outs := pub.PublishBatch(ctx, []bus.Notice{{Channel: ch, Payload: []byte(`{}`)}, {Channel: ch, Payload: []byte(`{}`)}})
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("answered after %s", took)
		}
		for i, o := range outs {
			if !errors.Is(o.Err, bus.ErrUnavailable) {
				t.Fatalf("notice %d: %+v, want ErrUnavailable", i, o)
			}
		}
	})
}

// countingHook counts pipelines of scripts (each one round trip to a
// server) and the commands in them.
type countingHook struct{ pipelines, commands *atomic.Int64 }

func (countingHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if n := cmds[0].Name(); n != "eval" && n != "evalsha" {
			return next(ctx, cmds) // a new connection's handshake
		}
		h.pipelines.Add(1)
		h.commands.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}
