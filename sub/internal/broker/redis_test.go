package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

func start(t *testing.T, srv *redistest.Server, edit ...func(*broker.Config)) (*broker.Redis, *inbox, *redis.Client) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	in := &inbox{msgs: map[wire.Channel][]string{}}
	cfg := broker.Config{
		Client: rdb, Handler: in.handle, CountTTL: 3 * time.Second, HealthInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, e := range edit {
		e(&cfg)
	}
	b, err := broker.NewRedis(cfg)
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
	waitUpTo(t, 15*time.Second, what, cond)
}

func waitUpTo(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
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
// (INFO commandstats): one SUBSCRIBE command counts once, however many
// channels it names.
func calls(t *testing.T, rdb *redis.Client, cmd string) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// A burst of subscribers costs a few batched commands, not one round trip
// each: 3,000 concurrent Subscribes are confirmed and counted in a few
// dozen SUBSCRIBE commands and count pipelines (about 25 measured), and
// leave in a few UNSUBSCRIBEs.
func TestManyChannelsBatched(t *testing.T) {
	srv := redistest.Start(t)
	b, _, rdb := start(t, srv)
	sent := &roundTrips{}
	rdb.AddHook(sent) // the broker's count writes go through this client
	ctrl := srv.Client()
	defer ctrl.Close()
	ctx := context.Background()
	if err := ctrl.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const n, most = 3000, 60 // at least 50 subscriptions per round trip
	chs := make([]wire.Channel, n)
	for i := range chs {
		chs[i], _ = wire.PersonChannel("acme", fmt.Sprint("u", i))
	}
	all := func(f func(ch wire.Channel) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, ch := range chs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- f(ch)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	all(func(ch wire.Channel) error { return b.Subscribe(ctx, []wire.Channel{ch}) })
	if got, _ := ctrl.PubSubChannels(ctx, "*").Result(); len(got) != n {
		t.Fatalf("%d channels subscribed, want %d", len(got), n)
	}
	subs, counts := calls(t, ctrl, "subscribe"), sent.n.Load()
	t.Logf("%d subscriptions: %d SUBSCRIBE commands, %d count round trips", n, subs, counts)
	if subs+int(counts) > most {
		t.Fatalf("%d subscriptions took %d SUBSCRIBE commands and %d count round trips; want them batched, at most %d in all", n, subs, counts, most)
	}

	all(func(ch wire.Channel) error { b.Unsubscribe([]wire.Channel{ch}); return nil })
	waitFor(t, "every channel unsubscribed", func() bool {
		got, _ := ctrl.PubSubChannels(ctx, "*").Result()
		return len(got) == 0
	})
	if unsubs := calls(t, ctrl, "unsubscribe"); unsubs > most/2 {
		t.Fatalf("%d unsubscriptions took %d UNSUBSCRIBE commands; want them batched, at most %d", n, unsubs, most/2)
	}
}

// A Redis that restarts empty gets every subscription and every count back
// at once, not at the next periodic refresh: with COUNT_TTL at 10 minutes
// that refresh is 200s away, and the counts must be back within 10s.
func TestRedisRestartRestoresSubscriptionsAndCounts(t *testing.T) {
	srv := redistest.Start(t)
	b, in, rdb := start(t, srv, func(c *broker.Config) { c.CountTTL = 10 * time.Minute })
	ch, _ := wire.PersonChannel("acme", "phoenix")
	if err := b.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	waitFor(t, "unhealthy", func() bool { return !b.Healthy() })
	srv.Start()
	waitUpTo(t, 10*time.Second, "the count rewritten after the restart (the periodic refresh is 200s away)", func() bool {
		return publish(t, rdb, ch, "again") == 1
	})
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
