package bus_test

// Tests of the shards and the cluster's slot map (shard.go, topology.go,
// slot.go) aimed at mutants that survived `make mutation PKGS=bus`
// (docs/mutation.md), against real redis-servers.

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/service/logging/logtest"
	"github.com/oshirase/oshirase/wire"
)

// The bus computes every key's and channel's slot as Redis does (CLUSTER
// KEYSLOT): hash tags at the start, in the middle, empty, unclosed or
// repeated, bytes over 0x7f, and the names the bus uses.
func TestSlotOfIsRedisKeyslot(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 0)
	rdb := c.Client()
	defer rdb.Close()
	person, _ := wire.PersonChannel("acme", "bob")
	keys := []string{
		"", "a", "foo", "123456789", "{", "}", "{}", "{}x", "x{}", "x{}{y}",
		"{a}", "{a}b", "b{a}", "x{a}y{b}", "{{a}}", "a{b", "a}b{c}", "{a",
		"\x00", "\xff\xfe\x80", "{\xff}", "oshirase:probe:{instance/7}",
		string(person), person.CountKey(), person.HistoryKey(), person.MetaKey(),
		string(wire.PublicChannel()),
	}
	for i := range 200 {
		keys = append(keys, fmt.Sprint("user-", i), fmt.Sprintf("k%c%d", rune(i), i*7919))
	}
	ctx := context.Background()
	for _, k := range keys {
		want, err := rdb.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := bus.SlotOf(k); int64(got) != want {
			t.Fatalf("SlotOf(%q) = %d, Redis says %d", k, got, want)
		}
	}
}

// Ready's reason names the connection without its address (/readyz shows
// it to whoever asks): "redis" on one server or Sentinel, "a redis cluster
// master" on a cluster.
func TestReadyNamesTheConnectionWithoutItsAddress(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instance(t, d, newInbox(), fastProbe)
		ctx := context.Background()
		waitFor(t, "ready", func() bool { return b.Ready(ctx) == nil })
		masters := d.masters()
		d.stop()
		var err error
		waitFor(t, "not ready", func() bool { err = b.Ready(ctx); return err != nil })
		want := "redis: "
		if d.sharded() {
			want = "a redis cluster master: "
		}
		if !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("Ready with Redis down: %q, want it to start with %q", err, want)
		}
		for _, m := range masters {
			if strings.Contains(err.Error(), m.Addr) || strings.Contains(err.Error(), strconv.Itoa(m.Port)) {
				t.Fatalf("Ready's reason %q names the address %s", err, m.Addr)
			}
		}
	})
}

// A Pub/Sub connection that keeps failing (Redis behind a proxy is down:
// every connection is accepted and dropped at once) is redialled with a
// backoff, from 50ms doubling to 1s, not in a busy loop: from the start,
// and again after a connection that worked.
func TestReconnectsBackOff(t *testing.T) {
	onlyOn(t, "single")
	srv := redistest.Start(t)
	proxy := redistest.StartProxy(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	srv.Stop()
	b := instanceWith(t, single{srv}, newInbox(), func(c *bus.Config) { c.Client = rdb })
	paced := func(when string) {
		t.Helper()
		const window = 3 * time.Second
		before := proxy.Accepted()
		time.Sleep(window) // a rate is measured over a time
		dials := proxy.Accepted() - before
		// The reader: about 7 in 3s (50ms, 100ms, … 1s apart); the sync
		// loop's retries (500ms apart) a few more.
		if most := int64(60); dials > most {
			t.Fatalf("%s: %d connections in %v with Redis down; want reconnects backed off (at most %d)", when, dials, window, most)
		}
		if dials == 0 {
			t.Fatalf("%s: no reconnect in %v", when, window)
		}
	}
	paced("Redis down from the start")
	srv.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, _ := wire.PersonChannel("acme", "bob")
	if err := b.Subscribe(ctx, []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	waitFor(t, "unhealthy", func() bool { return !b.Healthy() })
	paced("Redis gone after it answered")
}

// The delivery probe runs as configured: every ProbeInterval (counted in
// the PUBLISHes Redis runs: the bus publishes nothing else here), and a
// probe that does not come back fails after ProbeTimeout, as Ready says
// and the bus logs.
func TestProbeAsConfigured(t *testing.T) {
	onlyOn(t, "single")
	srv := redistest.Start(t)
	// Probes are 200ms apart: the silence below holds the Pub/Sub
	// connection, and command connections are redialled.
	proxy, rdb := proxiedClient(t, srv)
	logs := &logtest.Recorder{}
	b := instanceWith(t, single{srv}, newInbox(), func(c *bus.Config) {
		c.Client = rdb
		c.ProbeInterval, c.ProbeTimeout = 200*time.Millisecond, 700*time.Millisecond
		c.HealthInterval = time.Hour // only the probe may notice
		c.Logger = slog.New(logs)
	})
	ctx := context.Background()
	d := single{srv}
	waitFor(t, "ready", func() bool { return b.Ready(ctx) == nil })
	resetStats(t, d)
	const window = 2 * time.Second
	time.Sleep(window) // a rate is measured over a time
	if n := calls(t, d, "publish"); n < 4 || n > 12 {
		t.Fatalf("%d probes in %v, want one every 200ms", n, window)
	}
	proxy.Silence()
	const want = "delivery probe not received within 700ms"
	// Read from Ready, which says the last probe's verdict: the log says
	// only the first (a verdict is logged when it turns), and a pooled
	// connection open at the silence makes that first one "could not be
	// published" (once under make test's load) before a probe published
	// on a new connection is not received.
	var last error
	deadline := time.Now().Add(10 * time.Second)
	for last = b.Ready(ctx); last == nil || !strings.Contains(last.Error(), want); last = b.Ready(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("Ready says %v 10s into the silence, want %q", last, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !logs.Has("redis pub/sub not proven to deliver", "") {
		t.Fatalf("the failed probe not logged; the bus logged:\n%s", logs)
	}
}

// proxiedClient starts a proxy to srv and a client through it for a bus
// whose Pub/Sub connection a test silences (proxy.Silence). The client
// redials pooled connections older than 50ms, so that a silence holds the
// Pub/Sub connection and, at most, a command connection used in the 50ms
// before it; it does not retry, and honours its callers' deadlines.
func proxiedClient(t *testing.T, srv *redistest.Server) (*redistest.Proxy, *redis.Client) {
	t.Helper()
	proxy := redistest.StartProxy(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr, MaxRetries: -1, ContextTimeoutEnabled: true, ConnMaxLifetime: 50 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	return proxy, rdb
}

// On a cluster the slot map is read again every TopologyInterval, whether
// or not anything failed, and not more often while nothing fails: rounds
// (here every 200ms, to refresh the counts) do not read it (counted in the
// CLUSTER SLOTS Redis runs). A map read again unchanged changes nothing
// (the bus logs every change).
func TestClusterSlotMapReadEveryTopologyInterval(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 0)
	d := cluster{c}
	ctx := context.Background()
	const changedMsg = "redis cluster slot map changed"
	reads := func(interval time.Duration) (n, changes int) {
		t.Helper()
		logs := &logtest.Recorder{}
		b := instance(t, d, newInbox(), func(c *bus.Config) {
			c.TopologyInterval, c.CountTTL = interval, 600*time.Millisecond
			c.Logger = slog.New(logs)
		})
		ch, _ := wire.PersonChannel("acme", "bob")
		if err := b.Subscribe(ctx, []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "ready", func() bool { return b.Ready(ctx) == nil })
		resetStats(t, d)
		before := logs.Count(changedMsg)
		time.Sleep(2 * time.Second) // a rate is measured over a time
		n = calls(t, d, "cluster|slots")
		changes = logs.Count(changedMsg) - before
		_ = b.Close()
		return n, changes
	}
	n, changes := reads(200 * time.Millisecond)
	if n < 4 {
		t.Fatalf("TopologyInterval 200ms: the slot map was read %d times in 2s, want every 200ms", n)
	}
	if changes != 0 {
		t.Fatalf("the slot map, read %d times unchanged, was taken for a change %d times", n, changes)
	}
	// go-redis's own client may read it too, once in a while.
	if n, _ := reads(time.Hour); n > 2 {
		t.Fatalf("TopologyInterval 1h: the slot map was read %d times in 2s; want it left alone while nothing fails", n)
	}
}

// A slot that moves is followed at once (Redis unsubscribes its channels
// on the old owner, which has the slot map read again), not at the next
// periodic read (TopologyInterval, here an hour away).
func TestClusterSlotMoveFollowedAtOnce(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 0)
	d := cluster{c}
	in := newInbox()
	b := instance(t, d, in, func(c *bus.Config) { c.TopologyInterval = time.Hour })
	pub := instance(t, d, nil)
	ch, slot, from := channelOnLowestSlot(t, c, "mover")
	ctx := context.Background()
	// The slot map is read at the start (and after every failure) too.
	first, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.Subscribe(first, []wire.Channel{ch}); err != nil {
		t.Fatalf("Subscribe: %v (the slot map not read at the start?)", err)
	}
	if moved := c.Reshard(from, otherMaster(t, c, from), 1); len(moved) != 1 || moved[0] != slot {
		t.Fatalf("redis-cli --cluster reshard moved slots %v, want [%d]", moved, slot)
	}
	// (Well under TopologyInterval; a loaded machine may take seconds.)
	waitUpTo(t, 30*time.Second, "notices and counts on the new owner", func() bool {
		n, err := tryPublish(pub, ch, "moved")
		return err == nil && n == 1 && in.count(ch) >= 1
	})
}

// A master drops a wanted channel (its slot moved) while CLUSTER SLOTS
// still answers the map from before the move, as a node not yet told of
// it does (redis-cli tells the masters one after the other, replicas learn
// by gossip): the bus reads the map again until it shows the move, and
// follows the slot well before TopologyInterval (an hour). Read once, the
// stale map left the channel unsubscribed until then.
func TestClusterSlotMoveFollowedThroughAStaleMap(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 0)
	d := cluster{c}
	in := newInbox()
	stale := &staleSlots{}
	b := instance(t, d, in, func(c *bus.Config) {
		c.TopologyInterval = time.Hour
		c.Client.AddHook(stale)
	})
	pub := instance(t, d, nil)
	ch, slot, from := channelOnLowestSlot(t, c, "stale")
	ctx := context.Background()
	if err := b.Subscribe(ctx, []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return b.Ready(ctx) == nil })
	rdb := c.Client()
	old, err := rdb.ClusterSlots(ctx).Result()
	rdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	stale.serve(old)
	if moved := c.Reshard(from, otherMaster(t, c, from), 1); len(moved) != 1 || moved[0] != slot {
		t.Fatalf("redis-cli --cluster reshard moved slots %v, want [%d]", moved, slot)
	}
	// The old owner has dropped the channel; the map stays stale a while.
	time.Sleep(500 * time.Millisecond)
	n := stale.stop()
	if n == 0 {
		t.Fatal("the bus did not read the slot map after the old owner dropped its channel")
	}
	start := time.Now()
	waitUpTo(t, 10*time.Second, "notices and counts on the new owner", func() bool {
		n, err := tryPublish(pub, ch, "moved")
		return err == nil && n == 1 && in.count(ch) >= 1
	})
	t.Logf("the slot map read %d times stale; the channel followed %s after it was fresh", n, time.Since(start).Round(time.Millisecond))
}

// staleSlots is a hook that, while serving, answers CLUSTER SLOTS with an
// old slot map instead of asking the cluster.
type staleSlots struct {
	mu     sync.Mutex
	old    []redis.ClusterSlot
	served int
}

func (h *staleSlots) serve(old []redis.ClusterSlot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.old, h.served = old, 0
}

// stop ends serving and answers how many reads got the old map.
func (h *staleSlots) stop() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.old = nil
	return h.served
}

func (h *staleSlots) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *staleSlots) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if sc, ok := cmd.(*redis.ClusterSlotsCmd); ok {
			h.mu.Lock()
			old := h.old
			if old != nil {
				h.served++
			}
			h.mu.Unlock()
			if old != nil {
				sc.SetVal(old)
				return nil
			}
		}
		return next(ctx, cmd)
	}
}

func (h *staleSlots) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// The bus logs a change of a connection's state, once, not every reply or
// probe: connected once; an idle connection answering its PINGs is never
// taken for lost; a probe verdict is logged when it turns (not proven to
// deliver, then delivers again), not at every probe.
func TestConnectionStateLoggedOnChange(t *testing.T) {
	onlyOn(t, "single")
	srv := redistest.Start(t)
	d := single{srv}
	logs := &logtest.Recorder{}
	b := instance(t, d, newInbox(), func(c *bus.Config) {
		c.ProbeInterval, c.ProbeTimeout = 500*time.Millisecond, time.Second
		c.Logger = slog.New(logs)
	}) // HealthInterval 200ms: the connection is pinged between probes
	ctx := context.Background()
	const (
		connected = "redis pub/sub connected"
		lost      = "redis pub/sub connection lost; reconnecting"
		notProven = "redis pub/sub not proven to deliver"
		again     = "redis pub/sub delivers again"
	)
	// A first probe that runs before the connection is up fails quietly,
	// and its success then may log "delivers again": counted from ready.
	base := map[string]int{}
	want := func(when string, counts map[string]int) {
		t.Helper()
		for msg, n := range counts {
			if got := logs.Count(msg) - base[msg]; got != n {
				t.Fatalf("%s: %q logged %d times, want %d", when, msg, got, n)
			}
		}
	}
	waitFor(t, "ready", func() bool { return b.Ready(ctx) == nil })
	base[again] = logs.Count(again)
	time.Sleep(1500 * time.Millisecond) // probes and PINGs come and go meanwhile
	want("idle and delivering", map[string]int{connected: 1, lost: 0, notProven: 0, again: 0})
	srv.Stop()
	waitFor(t, "unhealthy", func() bool { return !b.Healthy() })
	time.Sleep(1500 * time.Millisecond) // probes keep failing meanwhile
	want("Redis down", map[string]int{lost: 1, notProven: 1, again: 0})
	srv.Start()
	waitFor(t, "ready again", func() bool { return b.Ready(ctx) == nil })
	want("Redis back", map[string]int{connected: 2, notProven: 1, again: 1})
}

// A publish-only bus's Ready loads the publish script only when Redis
// lacks it: once loaded, Ready only asks.
func TestPublishOnlyReadyLoadsTheScriptOnce(t *testing.T) {
	onlyOn(t, "single")
	d := single{redistest.Start(t)}
	pub := instance(t, d, nil)
	ctx := context.Background()
	if err := pub.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	resetStats(t, d)
	for range 3 {
		if err := pub.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls(t, d, "script|load"); n != 0 {
		t.Fatalf("Ready with the script in Redis ran SCRIPT LOAD %d times, want 0", n)
	}
	if n := calls(t, d, "script|exists"); n != 3 {
		t.Fatalf("3 Readys ran SCRIPT EXISTS %d times, want 3", n)
	}
}

// Replaced counts every replaced connection, those of a master's shard
// retired after a failover included: the total does not shrink when the
// shard goes.
func TestClusterReplacedKeepsRetiredShards(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 1)
	d := cluster{c}
	b := instance(t, d, newInbox(), fastProbe)
	ctx := context.Background()
	chs := channelsOnEveryMaster(t, c)
	if err := b.Subscribe(ctx, chs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return b.Ready(ctx) == nil })
	victim := c.MasterOf(bus.SlotOf(string(chs[0])))
	c.KillMaster(victim)
	// The dead master's connection fails and is replaced (again and again)
	// until the promoted replica's shard takes over and its own retires.
	peak := int64(0)
	waitUpTo(t, 20*time.Second, "ready on the promoted master", func() bool {
		peak = max(peak, b.Replaced())
		return b.Ready(ctx) == nil
	})
	if peak == 0 {
		t.Fatal("no connection replaced while a master was down")
	}
	if got := b.Replaced(); got < peak {
		t.Fatalf("Replaced() = %d after the failover, %d before the dead master's shard retired", got, peak)
	}
}

// A probe channel whose subscription Redis confirms late, behind a backlog
// the reader is still working through (the probe moved, as on a slot move
// of a cluster, while a handler taking 2 ms a message is seconds behind),
// is waited for while messages keep coming off the connection, past
// ProbeTimeout: the connection is not replaced, which would lose the
// backlog. The test runs the probes (ProbeInterval is an hour) while the
// backlog drains.
func TestProbeChannelConfirmedLateBehindABacklog(t *testing.T) {
	onlyOn(t, "single")
	srv := redistest.Start(t)
	ch, _ := wire.PersonChannel("acme", "bob")
	var got atomic.Int64
	sub := instanceWith(t, single{srv}, nil, func(c *bus.Config) {
		c.Handler = func(on wire.Channel, _ []byte) {
			if on == ch {
				got.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
		// The backlog limit is then 15 × 400 ms = 6 s.
		c.ProbeInterval, c.ProbeTimeout = time.Hour, 400*time.Millisecond
	})
	ctx := context.Background()
	if err := sub.Subscribe(ctx, []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return sub.Ready(ctx) == nil })
	// 1,000 notices at 2 ms each: 2–4 s behind, five ProbeTimeouts or more.
	const n = 1000
	publishBacklog(t, srv, ch, n)
	start := time.Now()
	bus.MoveProbe(sub, "oshirase:probe:{moved}")
	for deadline := time.Now().Add(30 * time.Second); got.Load() < n; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d notices handled after 30s", got.Load(), n)
		}
		bus.ProbeNow(sub)
		if r := sub.Replaced(); r != 0 {
			t.Fatalf("the connection was replaced %d times while its probe channel's confirmation was behind a backlog (%d of %d notices handled, %s after the probe moved)", r, got.Load(), n, time.Since(start).Round(time.Millisecond))
		}
	}
	t.Logf("%d notices handled in %s", n, time.Since(start).Round(time.Millisecond))
	if g := got.Load(); g != n {
		t.Fatalf("handled %d notices, want %d", g, n)
	}
	waitFor(t, "ready on the moved probe", func() bool {
		bus.ProbeNow(sub)
		return sub.Ready(ctx) == nil
	})
}

// A probe channel whose subscription Redis has not confirmed, on a
// connection that has gone quiet (a proxy forwards nothing back), is
// given ProbeTimeout: probes before then leave the connection alone, the
// first one after replaces it. The bus is not ready again until a probe
// comes back on the new connection, however healthy it is. The test runs
// the probes (ProbeInterval is an hour).
func TestUnconfirmedProbeChannelGetsProbeTimeout(t *testing.T) {
	onlyOn(t, "single")
	srv := redistest.Start(t)
	proxy, rdb := proxiedClient(t, srv)
	const timeout = 2 * time.Second
	sub := instanceWith(t, single{srv}, newInbox(), func(c *bus.Config) {
		c.Client = rdb
		c.ProbeInterval, c.ProbeTimeout = time.Hour, timeout
		c.HealthInterval = time.Hour // only the probe may notice
	})
	ctx := context.Background()
	waitFor(t, "ready", func() bool { return sub.Ready(ctx) == nil })
	proxy.Silence()
	start := time.Now()
	bus.MoveProbe(sub, "oshirase:probe:{moved}")
	for range 5 {
		bus.ProbeNow(sub)
		since := time.Since(start)
		if r := sub.Replaced(); r != 0 && since < timeout {
			t.Fatalf("replaced %d times %s after the probe channel was subscribed; want it given ProbeTimeout (%s)", r, since.Round(time.Millisecond), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Until(start.Add(timeout + 100*time.Millisecond)))
	bus.ProbeNow(sub)
	waitFor(t, "the connection replaced", func() bool { return sub.Replaced() > 0 })
	// Up again, but no probe has come back on the new connection yet: not
	// ready, and Ready says why.
	waitFor(t, "the new connection up", sub.Healthy)
	if err := sub.Ready(ctx); err == nil || !strings.Contains(err.Error(), "delivery probe channel not confirmed") {
		t.Fatalf("Ready before a probe came back on the new connection: %v, want the failed probe's reason", err)
	}
	waitFor(t, "ready after a probe", func() bool {
		bus.ProbeNow(sub)
		return sub.Ready(ctx) == nil
	})
}

// On a cluster, a Pub/Sub connection that fails is replaced by the shard
// itself, at once, not left to go-redis (whose reconnect re-subscribes
// every channel in one SSUBSCRIBE, which the cluster refuses when they
// span slots) and to the next probe: with the probe an hour away, notices
// flow again within seconds after every master killed its Pub/Sub
// connections.
func TestClusterKilledConnectionReplacedWithoutTheProbe(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 0)
	d := cluster{c}
	in := newInbox()
	sub := instance(t, d, in, func(c *bus.Config) { c.ProbeInterval, c.CountTTL = time.Hour, 10*time.Minute })
	pub := instance(t, d, nil)
	ctx := context.Background()
	chs := channelsOnEveryMaster(t, c)
	if err := sub.Subscribe(ctx, chs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return sub.Ready(ctx) == nil })
	for _, m := range d.masters() {
		rdb := m.Client()
		_, err := rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
		rdb.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range chs {
		waitFor(t, "delivery again on "+string(ch), func() bool {
			n, err := tryPublish(pub, ch, "again")
			return err == nil && n == 1 && in.count(ch) >= 1
		})
	}
}
