package bus_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/wire"
)

// Tests of what only some topologies have: a cluster's shards, failovers
// and slot migrations, Sentinel failovers, and the delivery probe.

// fastProbe proves delivery every 300ms (2s to come back).
func fastProbe(c *bus.Config) { c.ProbeInterval, c.ProbeTimeout = 300*time.Millisecond, 2*time.Second }

// channelsOnEveryMaster returns person channels, at least one on each of
// the cluster's masters, with every other scope's channel.
func channelsOnEveryMaster(t *testing.T, c *redistest.Cluster) []wire.Channel {
	t.Helper()
	slots := c.Slots("")
	company, _ := wire.NewChannel("acme", wire.ScopeCompany, "")
	store, _ := wire.NewChannel("acme", wire.ScopeStore, "s1")
	chs := []wire.Channel{company, store, wire.PublicChannel()}
	seen := map[string]bool{}
	for i := 0; len(seen) < len(c.Masters()) || i < 12; i++ {
		ch, _ := wire.PersonChannel("acme", fmt.Sprint("user-", i))
		seen[slots[bus.SlotOf(string(ch))]] = true
		chs = append(chs, ch)
	}
	return chs
}

func ownerOf(c *redistest.Cluster, ch wire.Channel) string {
	return c.Slots("")[bus.SlotOf(string(ch))]
}

// channelOnLowestSlot returns a person channel, named prefix-N, whose slot
// is the lowest-numbered slot its master owns: the slot that
// `redis-cli --cluster reshard` (redistest's Reshard) moves first from that
// master, which has no option to name one. It returns the slot and its
// master too.
func channelOnLowestSlot(t *testing.T, c *redistest.Cluster, prefix string) (wire.Channel, int, *redistest.Server) {
	t.Helper()
	lowest := map[int]*redistest.Server{}
	for _, m := range c.Masters() {
		lowest[c.LowestSlot(m)] = m
	}
	// About 16384 / len(lowest) names to try.
	for i := range 1_000_000 {
		ch, _ := wire.PersonChannel("acme", fmt.Sprint(prefix, "-", i))
		if m := lowest[bus.SlotOf(string(ch))]; m != nil {
			return ch, bus.SlotOf(string(ch)), m
		}
	}
	t.Fatalf("no channel %s-N on any of the slots %v", prefix, lowest)
	return "", 0, nil
}

// otherMaster is a master other than m.
func otherMaster(t *testing.T, c *redistest.Cluster, m *redistest.Server) *redistest.Server {
	t.Helper()
	for _, o := range c.Masters() {
		if o != m {
			return o
		}
	}
	t.Fatalf("no master besides %s", m.Addr)
	return nil
}

// Every scope, on channels spread over every master, reaches two sub
// instances, counted on both; each instance holds one Pub/Sub connection
// per master, not one per channel.
func TestClusterDeliversEveryScopeOnEveryMaster(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 1)
	d := cluster{c}
	inA, inB := newInbox(), newInbox()
	a, b := instance(t, d, inA, fastProbe), instance(t, d, inB, fastProbe)
	pub := instance(t, d, nil)
	chs := channelsOnEveryMaster(t, c)
	ctx := context.Background()
	for _, s := range []*bus.Redis{a, b} {
		if err := s.Subscribe(ctx, chs); err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range chs {
		if n := publish(t, pub, ch, "hi "+string(ch)); n != 2 {
			t.Fatalf("%s (on %s): receivedUsers %d, want 2", ch, ownerOf(c, ch), n)
		}
	}
	for _, ch := range chs {
		waitFor(t, "delivery on both instances of "+string(ch), func() bool { return inA.count(ch) == 1 && inB.count(ch) == 1 })
	}
	waitFor(t, "both ready", func() bool { return a.Ready(ctx) == nil && b.Ready(ctx) == nil })
	// One Pub/Sub connection per master and instance: CLIENT LIST TYPE
	// pubsub on each master lists the two instances' connections.
	for _, m := range c.Masters() {
		rdb := m.Client()
		list, err := rdb.ClientList(ctx).Result()
		rdb.Close()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(list, "\n") {
			if strings.Contains(line, "ssub=") && !strings.Contains(line, "ssub=0") {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("master %s: %d connections with shard subscriptions, want 2 (one per instance)\n%s", m.Addr, n, list)
		}
	}
}

// A notice travels sharded: it is SPUBLISHed on its channel's owner only,
// and never goes out as a classic PUBLISH (which a cluster broadcasts to
// every node): plain SUBSCRIBErs of the channel on every node get nothing,
// the other masters run no SPUBLISH and receive no shard message over the
// cluster bus.
func TestClusterNoticesTravelSharded(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 1)
	d := cluster{c}
	in := newInbox()
	// The delivery probe SPUBLISHes on every master: at the start every
	// 100 ms until each shard's first probe came back, then every
	// ProbeInterval (5 s by default), which could fall in the counted
	// window and count on a master that does not own ch (or twice on
	// one that does). An hour away, no SPUBLISH but the test's own runs
	// once the instance is ready, and each master's count is exact.
	sub := instance(t, d, in, func(c *bus.Config) { c.ProbeInterval = time.Hour })
	pub := instance(t, d, nil)
	ch, _ := wire.PersonChannel("acme", "sharded")
	ctx := context.Background()
	if err := sub.Subscribe(ctx, []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return sub.Ready(ctx) == nil })
	owner := ownerOf(c, ch)
	var plain []*redis.PubSub
	for _, n := range c.Nodes {
		rdb := n.Client()
		ps := rdb.Subscribe(ctx, string(ch))
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		plain = append(plain, ps)
		t.Cleanup(func() { ps.Close(); rdb.Close() })
	}
	resetStats(t, d)
	infoBefore := map[string]int{}
	for _, m := range c.Masters() {
		infoBefore[m.Addr] = clusterStat(t, m, "cluster_stats_messages_publishshard_received")
	}
	const n = 20
	for i := range n {
		publish(t, pub, ch, fmt.Sprint("n", i))
	}
	waitFor(t, "the notices", func() bool { return in.count(ch) == n })
	for _, m := range c.Masters() {
		spub := calls(t, cluster{c}.only(m), "spublish")
		classic := calls(t, cluster{c}.only(m), "publish")
		if classic != 0 {
			t.Fatalf("master %s ran %d classic PUBLISHes", m.Addr, classic)
		}
		if m.Addr == owner && spub != n {
			t.Fatalf("owner %s ran %d SPUBLISHes, want %d", m.Addr, spub, n)
		}
		if m.Addr != owner {
			if spub != 0 {
				t.Fatalf("master %s, not the owner, ran %d SPUBLISHes", m.Addr, spub)
			}
			if got := clusterStat(t, m, "cluster_stats_messages_publishshard_received"); got != infoBefore[m.Addr] {
				t.Fatalf("master %s, not the owner, received %d shard messages over the cluster bus", m.Addr, got-infoBefore[m.Addr])
			}
		}
	}
	for i, ps := range plain {
		if msg, err := ps.ReceiveTimeout(ctx, 50*time.Millisecond); err == nil {
			if m, ok := msg.(*redis.Message); ok {
				t.Fatalf("a plain SUBSCRIBEr on %s got %q: the notice was broadcast", c.Nodes[i].Addr, m.Payload)
			}
		}
	}
}

// only narrows a deployment's masters to one server, for calls.
func (c cluster) only(m *redistest.Server) deployment { return onlyMaster{c, m} }

type onlyMaster struct {
	cluster
	m *redistest.Server
}

func (o onlyMaster) masters() []*redistest.Server { return []*redistest.Server{o.m} }

func clusterStat(t *testing.T, s *redistest.Server, name string) int {
	t.Helper()
	rdb := s.Client()
	defer rdb.Close()
	info, err := rdb.ClusterInfo(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// A master killed and its replica promoted: the instance's subscriptions
// on it resume on the new master within seconds, counts right again, and
// Ready reports the outage while it lasts.
func TestClusterMasterFailover(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 1)
	d := cluster{c}
	in := newInbox()
	sub := instance(t, d, in, fastProbe, func(c *bus.Config) { c.CountTTL = 10 * time.Minute })
	pub := instance(t, d, nil)
	chs := channelsOnEveryMaster(t, c)
	ctx := context.Background()
	if err := sub.Subscribe(ctx, chs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return sub.Ready(ctx) == nil })
	victim := c.MasterOf(bus.SlotOf(string(chs[len(chs)-1])))
	var onVictim []wire.Channel
	for _, ch := range chs {
		if ownerOf(c, ch) == victim.Addr {
			onVictim = append(onVictim, ch)
		}
	}
	notReady := atomic.Bool{}
	stopWatch := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if sub.Ready(ctx) != nil {
				notReady.Store(true)
			}
		}
	}()
	defer func() { close(stopWatch); wg.Wait() }()

	start := time.Now()
	promoted := c.KillMaster(victim)
	promotedAt := time.Since(start)
	ch := onVictim[0]
	waitUpTo(t, 20*time.Second, "notices and counts right on the promoted master", func() bool {
		n, err := tryPublish(pub, ch, "after failover")
		return err == nil && n == 1 && in.count(ch) >= 1
	})
	flowing := time.Since(start)
	for _, ch := range chs {
		waitFor(t, "count of "+string(ch), func() bool {
			n, err := tryPublish(pub, ch, "x")
			return err == nil && n == 1
		})
	}
	waitFor(t, "ready again", func() bool { return sub.Ready(ctx) == nil })
	t.Logf("master %s killed: replica %s promoted after %s, notices and counts right after %s, ready after %s", victim.Addr, promoted.Addr, promotedAt.Round(time.Millisecond), flowing.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if !notReady.Load() {
		t.Fatal("Ready never reported the lost master")
	}
}

// A slot migrated by `redis-cli --cluster reshard` (CLUSTER SETSLOT
// IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE) while notices flow: Redis
// unsubscribes the channel on the old owner, the bus follows the slot to
// the new one. The channel is on its master's lowest slot, the one
// redis-cli moves. Guaranteed: every notice is recorded in the history (each
// publish is one atomic step in the slot, wherever the slot is); every
// notice published once the bus has re-subscribed on the new owner is
// delivered live, and the count is right again. Notices published between
// the slot's move and that re-subscription (a fraction of a second) may
// miss live delivery; a client's cursor replays them from the history.
func TestClusterSlotMigration(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 1)
	d := cluster{c}
	in := newInbox()
	sub := instance(t, d, in, fastProbe, func(c *bus.Config) { c.HistorySize, c.HistoryTTL = 1000, time.Hour })
	pub := instance(t, d, nil, func(c *bus.Config) { c.HistorySize, c.HistoryTTL = 1000, time.Hour })
	ch, slot, from := channelOnLowestSlot(t, c, "migrant")
	to := otherMaster(t, c, from)
	ctx := context.Background()
	if err := sub.Subscribe(ctx, []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	var published atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := tryPublish(pub, ch, fmt.Sprint("m", i)); err == nil {
				published.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	waitFor(t, "notices flowing", func() bool { return in.count(ch) > 10 })
	start := time.Now()
	moved := c.Reshard(from, to, 1)
	migrated := time.Since(start)
	if len(moved) != 1 || moved[0] != slot {
		t.Fatalf("redis-cli --cluster reshard moved slots %v, want [%d] (%s's channel)", moved, slot, ch)
	}
	if owner := c.MasterOf(slot); owner != to {
		t.Fatalf("slot %d is owned by %s after the reshard, want %s", slot, owner.Addr, to.Addr)
	}
	waitUpTo(t, 15*time.Second, "the bus on the new owner", func() bool {
		before := in.count(ch)
		time.Sleep(50 * time.Millisecond)
		return in.count(ch) > before
	})
	followed := time.Since(start)
	close(stop)
	<-done
	// Settled: every notice from now on is delivered and counted.
	base := in.count(ch)
	for i := range 50 {
		if n := publish(t, pub, ch, fmt.Sprint("after ", i)); n != 1 {
			t.Fatalf("receivedUsers after the migration = %d, want 1", n)
		}
	}
	waitFor(t, "all 50 notices after the migration", func() bool { return in.count(ch) == base+50 })
	total := published.Load() + 50
	heads, err := pub.Head(ctx, []wire.Channel{ch})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := pub.Since(ctx, []wire.Channel{ch}, []bus.Position{{Epoch: heads[0].Epoch}})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(entries[0])) != total {
		t.Fatalf("history holds %d notices, %d were published", len(entries[0]), total)
	}
	t.Logf("slot %d moved %s → %s in %s; notices flowed again %s after the move began; %d of %d published notices delivered live, all %d in the history",
		slot, from.Addr, to.Addr, migrated.Round(time.Millisecond), followed.Round(time.Millisecond), in.count(ch), total, len(entries[0]))
}

// Sentinel: the master killed, the replica promoted; notices flow again
// within seconds, and Ready is false while they cannot.
func TestSentinelFailover(t *testing.T) {
	onlyOn(t, "sentinel")
	s := redistest.StartSentinel(t)
	d := sentinel{s}
	in := newInbox()
	sub := instance(t, d, in, fastProbe, func(c *bus.Config) { c.CountTTL = 10 * time.Minute })
	pub := instance(t, d, nil)
	ch, _ := wire.PersonChannel("acme", "bob")
	ctx := context.Background()
	if err := sub.Subscribe(ctx, []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return sub.Ready(ctx) == nil })
	start := time.Now()
	old := s.Master()
	promoted := s.KillMaster()
	promotedAt := time.Since(start)
	if err := sub.Ready(ctx); err == nil {
		t.Fatal("ready while the master is gone and the bus has not reconnected")
	} else {
		t.Logf("not ready: %v", err)
	}
	waitUpTo(t, 20*time.Second, "notices and counts on the new master", func() bool {
		n, err := tryPublish(pub, ch, "after failover")
		return err == nil && n == 1 && in.count(ch) >= 1
	})
	flowing := time.Since(start)
	waitFor(t, "ready again", func() bool { return sub.Ready(ctx) == nil })
	t.Logf("master %s killed: %s promoted after %s; notices and counts right after %s; ready after %s", old.Addr, promoted.Addr, promotedAt.Round(time.Millisecond), flowing.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// A Pub/Sub connection that stays up and delivers nothing (a proxy that
// stops forwarding from Redis): the probe does not come back, Ready says
// so, the connection is replaced, and notices flow again, counted.
func TestSilencedConnectionIsReplaced(t *testing.T) {
	onlyOn(t, "single")
	srv := redistest.Start(t)
	proxy := redistest.StartProxy(t, srv.Addr)
	in := newInbox()
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	sub := instanceWith(t, single{srv}, in, func(c *bus.Config) {
		c.Client = rdb
		c.ProbeInterval, c.ProbeTimeout = 300*time.Millisecond, time.Second
		c.HealthInterval = time.Hour // only the probe may notice
	})
	pub := instance(t, single{srv}, nil)
	ch, _ := wire.PersonChannel("acme", "bob")
	ctx := context.Background()
	if err := sub.Subscribe(ctx, []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return sub.Ready(ctx) == nil })
	start := time.Now()
	proxy.Silence()
	waitFor(t, "not ready", func() bool { return sub.Ready(ctx) != nil })
	t.Logf("not ready after %s: %v", time.Since(start).Round(time.Millisecond), sub.Ready(ctx))
	waitUpTo(t, 15*time.Second, "notices through a new connection", func() bool {
		n, err := tryPublish(pub, ch, "again")
		return err == nil && n == 1 && in.count(ch) >= 1
	})
	waitFor(t, "ready again", func() bool { return sub.Ready(ctx) == nil })
	if sub.Replaced() < 1 {
		t.Fatal("the silent connection was not replaced")
	}
	t.Logf("silenced: replaced and delivering again after %s", time.Since(start).Round(time.Millisecond))
}

// A bus is ready as soon as its first probe comes back: not a whole
// ProbeInterval after a first probe that ran before its connection was up
// (every sub start answered /readyz 503 for its first 5 s).
func TestReadySoonAfterStart(t *testing.T) {
	onlyOn(t, "single")
	srv := redistest.Start(t)
	start := time.Now()
	b := instanceWith(t, single{srv}, newInbox(), func(c *bus.Config) { c.ProbeInterval = time.Hour })
	waitUpTo(t, 5*time.Second, "ready", func() bool { return b.Ready(context.Background()) == nil })
	t.Logf("ready %s after the start", time.Since(start).Round(time.Millisecond))
}

// A Pub/Sub connection whose reader is behind (a flood it is still working
// through; here a handler that takes 2 ms a message) is late, not silent:
// the probe waits while messages keep coming off the connection, so it is
// not replaced (which would lose the backlog) and every notice arrives.
func TestBacklogIsNotMistakenForSilence(t *testing.T) {
	onlyOn(t, "single")
	srv := redistest.Start(t)
	var got atomic.Int64
	sub := instanceWith(t, single{srv}, nil, func(c *bus.Config) {
		c.Handler = func(wire.Channel, []byte) {
			got.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
		// The backlog limit is then 15 × 400 ms = 6 s.
		c.ProbeInterval, c.ProbeTimeout = 100*time.Millisecond, 400*time.Millisecond
	})
	ch, _ := wire.PersonChannel("acme", "bob")
	ctx := context.Background()
	if err := sub.Subscribe(ctx, []wire.Channel{ch}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return sub.Ready(ctx) == nil })
	// 1,000 notices at 2 ms each: 2–4 s behind, five ProbeTimeouts or more.
	const n = 1000
	publishBacklog(t, srv, ch, n)
	start := time.Now()
	for deadline := time.Now().Add(30 * time.Second); got.Load() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d notices handled after 30s; connection replaced %d times", got.Load(), n, sub.Replaced())
		}
	}
	t.Logf("%d notices handled in %s", n, time.Since(start).Round(time.Millisecond))
	if r := sub.Replaced(); r != 0 {
		t.Fatalf("the connection was replaced %d times while it was delivering a backlog", r)
	}
	if g := got.Load(); g != n {
		t.Fatalf("handled %d notices, want %d", g, n)
	}
	waitFor(t, "ready", func() bool { return sub.Ready(ctx) == nil })
}

// CLIENT KILL TYPE pubsub on every master: the bus reconnects, notices
// flow again and counts are right.
func TestPubSubConnectionKilled(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		in := newInbox()
		sub := instance(t, d, in, fastProbe, func(c *bus.Config) { c.CountTTL = 10 * time.Minute })
		pub := instance(t, d, nil)
		person, _ := wire.PersonChannel("acme", "bob")
		chs := []wire.Channel{person, wire.PublicChannel()}
		ctx := context.Background()
		if err := sub.Subscribe(ctx, chs); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "ready", func() bool { return sub.Ready(ctx) == nil })
		start := time.Now()
		killed := 0
		for _, m := range d.masters() {
			rdb := m.Client()
			n, err := rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
			rdb.Close()
			if err != nil {
				t.Fatal(err)
			}
			killed += int(n)
		}
		if killed == 0 {
			t.Fatal("no pub/sub connection to kill")
		}
		for _, ch := range chs {
			waitFor(t, "delivery again on "+string(ch), func() bool {
				n, err := tryPublish(pub, ch, "again")
				return err == nil && n == 1 && in.count(ch) >= 1
			})
		}
		waitFor(t, "ready again", func() bool { return sub.Ready(ctx) == nil })
		t.Logf("%d pub/sub connections killed: delivering again after %s", killed, time.Since(start).Round(time.Millisecond))
	})
}

// A publish-only bus is ready when Redis answers and has the publish
// script, which Ready loads when it is missing (on a cluster, on every
// master); a Redis that is down makes it not ready.
func TestPublishOnlyReady(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		pub := instance(t, d, nil)
		ctx := context.Background()
		for _, m := range d.masters() {
			rdb := m.Client()
			_ = rdb.ScriptFlush(ctx).Err()
			rdb.Close()
		}
		if err := pub.Ready(ctx); err != nil {
			t.Fatalf("Ready: %v", err)
		}
		for _, m := range d.masters() {
			rdb := m.Client()
			ok, err := rdb.ScriptExists(ctx, bus.PublishHash(pub)).Result()
			rdb.Close()
			if err != nil || len(ok) != 1 || !ok[0] {
				t.Fatalf("master %s: publish script not loaded after Ready (%v, %v)", m.Addr, ok, err)
			}
		}
		d.stop()
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := pub.Ready(short); err == nil {
			t.Fatal("ready with Redis down")
		}
		d.start()
	})
}

// publishBacklog publishes n notices to ch in one pipeline, straight to
// Redis: a backlog on the subscriber's connection.
func publishBacklog(t *testing.T, srv *redistest.Server, ch wire.Channel, n int) {
	t.Helper()
	rdb := srv.Client()
	defer rdb.Close()
	pipe := rdb.Pipeline()
	for i := range n {
		pipe.Publish(context.Background(), string(ch), fmt.Sprint(i))
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}
