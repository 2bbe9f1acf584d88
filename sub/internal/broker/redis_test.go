package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/oshirase/oshirase/sub/internal/broker"
	"github.com/oshirase/oshirase/wire"
	"github.com/oshirase/oshirase/wire/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type inbox struct {
	mu   sync.Mutex
	msgs map[wire.Channel][]string
}

func (in *inbox) handle(ch wire.Channel, p []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.msgs[ch] = append(in.msgs[ch], string(p))
}

func (in *inbox) count(ch wire.Channel) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.msgs[ch])
}

func start(t *testing.T, srv *redistest.Server) (*broker.Redis, *inbox, *redis.Client) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	in := &inbox{msgs: map[wire.Channel][]string{}}
	b, err := broker.NewRedis(broker.Config{
		Client: rdb, Handler: in.handle, CountTTL: 3 * time.Second, HealthInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.Close()
		_ = rdb.Close()
	})
	return b, in, rdb
}

// publish runs pub's own script: the count it answers is what the broker
// recorded.
func publish(t *testing.T, rdb *redis.Client, ch wire.Channel, text string) int {
	t.Helper()
	m, _ := wire.NewMessage(text, wire.ScopePerson, time.Now())
	p, _ := m.Encode()
	n, err := wire.PublishScript.Run(context.Background(), rdb, []string{ch.CountKey()}, string(ch), p).Int()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSubscribeIsLiveAndCountedWhenItReturns(t *testing.T) {
	srv := redistest.Start(t)
	b, in, rdb := start(t, srv)
	ch, _ := wire.PersonChannel("acme", "bob")
	ctx := context.Background()

	if err := b.Subscribe(ctx, []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	if got := publish(t, rdb, ch, "one"); got != 1 {
		t.Fatalf("count after first Subscribe = %d, want 1", got)
	}
	if err := b.Subscribe(ctx, []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	if got := publish(t, rdb, ch, "two"); got != 2 {
		t.Fatalf("count after second Subscribe = %d, want 2", got)
	}
	waitFor(t, "both messages", func() bool { return in.count(ch) == 2 })

	b.Unsubscribe([]wire.Channel{ch})
	waitFor(t, "count 1", func() bool { return publish(t, rdb, ch, "probe") == 1 })
	chs, _ := rdb.PubSubChannels(ctx, "*").Result()
	if len(chs) != 1 {
		t.Fatalf("channels %v, want still subscribed", chs)
	}
	b.Unsubscribe([]wire.Channel{ch})
	waitFor(t, "unsubscribed", func() bool {
		chs, _ := rdb.PubSubChannels(ctx, "*").Result()
		return len(chs) == 0
	})
	if n, _ := rdb.Exists(ctx, ch.CountKey()).Result(); n != 0 {
		t.Fatal("count key left behind")
	}
}

// A subscription's channels become live and counted together.
func TestSubscribeSeveralChannelsAtOnce(t *testing.T) {
	srv := redistest.Start(t)
	b, _, rdb := start(t, srv)
	person, _ := wire.PersonChannel("acme", "bob")
	company, _ := wire.NewChannel("acme", wire.ScopeCompany, "")
	chs := []wire.Channel{person, company, wire.PublicChannel()}
	if err := b.Subscribe(context.Background(), chs); err != nil {
		t.Fatal(err)
	}
	for _, ch := range chs {
		if got := publish(t, rdb, ch, "x"); got != 1 {
			t.Fatalf("%s: count %d right after Subscribe, want 1", ch, got)
		}
	}
	b.Unsubscribe(chs)
	waitFor(t, "all gone", func() bool {
		n, _ := rdb.PubSubChannels(context.Background(), "*").Result()
		return len(n) == 0
	})
}

func TestManyChannelsBatched(t *testing.T) {
	srv := redistest.Start(t)
	b, _, rdb := start(t, srv)
	ctx := context.Background()
	const n = 3000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, _ := wire.PersonChannel("acme", fmt.Sprint("u", i))
			errs <- b.Subscribe(ctx, []wire.Channel{ch})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	chs, _ := rdb.PubSubChannels(ctx, "*").Result()
	if len(chs) != n {
		t.Fatalf("%d channels subscribed, want %d", len(chs), n)
	}
}

func TestRedisRestartRestoresSubscriptionsAndCounts(t *testing.T) {
	srv := redistest.Start(t)
	b, in, rdb := start(t, srv)
	ch, _ := wire.PersonChannel("acme", "phoenix")
	if err := b.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	waitFor(t, "unhealthy", func() bool { return !b.Healthy() })
	srv.Start()
	waitFor(t, "count restored", func() bool { return publish(t, rdb, ch, "again") == 1 })
	waitFor(t, "message after restart", func() bool { return in.count(ch) >= 1 })
	if !b.Healthy() {
		t.Fatal("not healthy after restart")
	}
}

// Subscriptions that come and go while Redis is down leave Redis, once it
// is back, subscribed to exactly the channels that have subscribers.
func TestViewsAgreeAfterChangesDuringAnOutage(t *testing.T) {
	srv := redistest.Start(t)
	b, _, rdb := start(t, srv)
	ctx := context.Background()
	stay, _ := wire.PersonChannel("acme", "stay")
	leave, _ := wire.PersonChannel("acme", "leave")
	for _, ch := range []wire.Channel{stay, leave} {
		if err := b.Subscribe(ctx, []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
	}
	srv.Stop()
	waitFor(t, "unhealthy", func() bool { return !b.Healthy() })
	b.Unsubscribe([]wire.Channel{leave})
	late, _ := wire.PersonChannel("acme", "late")
	lateDone := make(chan error, 1)
	go func() { lateDone <- b.Subscribe(ctx, []wire.Channel{late}) }() // waits for Redis
	srv.Start()
	if err := <-lateDone; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "redis subscribed to exactly stay and late", func() bool {
		chs, _ := rdb.PubSubChannels(ctx, "*").Result()
		slices.Sort(chs)
		want := []string{string(late), string(stay)}
		slices.Sort(want)
		return slices.Equal(chs, want)
	})
	waitFor(t, "counts", func() bool {
		return publish(t, rdb, stay, "x") == 1 && publish(t, rdb, late, "x") == 1 && publish(t, rdb, leave, "x") == 0
	})
}

func TestSubscribeWhileRedisIsDownFailsInTime(t *testing.T) {
	srv := redistest.Start(t)
	b, _, rdb := start(t, srv)
	srv.Stop()
	ch, _ := wire.PersonChannel("acme", "nobody")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := b.Subscribe(ctx, []wire.Channel{ch})
	if !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Subscribe with redis down: %v", err)
	}
	if b.Channels() != 0 {
		t.Fatal("failed Subscribe left a reference")
	}
	srv.Start()
	waitFor(t, "healthy", b.Healthy)
	ch2, _ := wire.PersonChannel("acme", "later")
	if err := b.Subscribe(context.Background(), []wire.Channel{ch2}); err != nil {
		t.Fatal(err)
	}
	if got := publish(t, rdb, ch2, "x"); got != 1 {
		t.Fatalf("count = %d", got)
	}
}

// A Redis that accepts connections and never answers (SIGSTOP): the
// connection is reported down, a subscription fails by its deadline, and
// Close returns in bounded time, leaving no goroutine behind (TestMain).
func TestFrozenRedis(t *testing.T) {
	srv := redistest.Start(t)
	b, _, _ := start(t, srv)
	live, _ := wire.PersonChannel("acme", "bob")
	if err := b.Subscribe(context.Background(), []wire.Channel{live}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "healthy", b.Healthy)

	srv.Freeze()
	waitFor(t, "the silent connection to count as down", func() bool { return !b.Healthy() })

	ch, _ := wire.PersonChannel("acme", "carol")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := b.Subscribe(ctx, []wire.Channel{ch}); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Subscribe with a frozen redis: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Subscribe with a 300ms deadline took %s", took)
	}

	start = time.Now()
	if err := b.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("Close with a frozen redis took %s", took)
	}
}

func TestCloseRemovesCounts(t *testing.T) {
	srv := redistest.Start(t)
	b, _, rdb := start(t, srv)
	ch, _ := wire.PersonChannel("acme", "bob")
	if err := b.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := publish(t, rdb, ch, "after close"); got != 0 {
		t.Fatalf("count after Close = %d, want 0", got)
	}
}

// A subscription that ends just before Close — as every one does at
// shutdown, when the sockets close first — leaves no count behind, even
// when Close comes before the round that would have written it.
func TestCloseRemovesCountsOfJustEndedSubscriptions(t *testing.T) {
	for i := range 20 {
		srv := redistest.Start(t)
		b, _, rdb := start(t, srv)
		ch, _ := wire.PersonChannel("acme", fmt.Sprint("bob-", i))
		if err := b.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		b.Unsubscribe([]wire.Channel{ch})
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if got := publish(t, rdb, ch, "after close"); got != 0 {
			t.Fatalf("round %d: count after Unsubscribe and Close = %d, want 0", i, got)
		}
		srv.Stop()
	}
}

func TestCrashedInstanceCountExpires(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	ch, _ := wire.PersonChannel("acme", "bob")
	// An instance that died without cleaning up left a count with 300ms to live.
	if err := wire.SetCountScript.Run(context.Background(), rdb, []string{ch.CountKey()}, "dead-instance", 5, 300).Err(); err != nil {
		t.Fatal(err)
	}
	if got := publish(t, rdb, ch, "x"); got != 5 {
		t.Fatalf("count = %d, want 5", got)
	}
	time.Sleep(400 * time.Millisecond)
	if got := publish(t, rdb, ch, "y"); got != 0 {
		t.Fatalf("expired count still answered: %d", got)
	}
}
