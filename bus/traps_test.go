package bus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
)

// The pinned go-redis's sharded Pub/Sub traps, each shown on a real
// cluster. The bus steps around them (shard.go); these tests say when a
// go-redis upgrade removes one, so the workaround can be looked at again.
// The bus's own behaviour in the same situations is tested in
// topology_test.go.

// shardChannels returns two channels on different masters, and two on
// one master in different slots.
func shardChannels(t *testing.T, c *redistest.Cluster) (otherMasters [2]string, sameMaster [2]string) {
	t.Helper()
	slots := c.Slots("")
	var first string
	for i := 0; ; i++ {
		ch := fmt.Sprintf("trap{%d}", i)
		if first == "" {
			first = ch
			otherMasters[0], sameMaster[0] = ch, ch
			continue
		}
		a, b := slots[bus.SlotOf(first)], slots[bus.SlotOf(ch)]
		if a != b && otherMasters[1] == "" {
			otherMasters[1] = ch
		}
		if a == b && sameMaster[1] == "" && bus.SlotOf(first) != bus.SlotOf(ch) {
			sameMaster[1] = ch
		}
		if otherMasters[1] != "" && sameMaster[1] != "" {
			return
		}
	}
}

// go-redis issue 3133 (open): a ClusterClient's PubSub is one connection,
// to the master of its first channel's slot; a channel of another master
// subscribed on it is refused (MOVED) and never delivers. The bus opens
// one connection per master instead.
func TestGoRedisTrapOnePubSubReachesOneShard(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 1)
	chs, _ := shardChannels(t, c)
	cc := c.Client()
	defer cc.Close()
	ctx := context.Background()
	ps := cc.SSubscribe(ctx, chs[0])
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	_ = ps.SSubscribe(ctx, chs[1])
	refused := false
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		_, err := ps.ReceiveTimeout(ctx, 200*time.Millisecond)
		if err != nil && strings.HasPrefix(err.Error(), "MOVED") {
			refused = true
			break
		}
	}
	if err := cc.SPublish(ctx, chs[1], "x").Err(); err != nil {
		t.Fatal(err)
	}
	got := false
	for range 5 {
		if msg, err := ps.ReceiveTimeout(ctx, 100*time.Millisecond); err == nil {
			if m, ok := msg.(*redis.Message); ok && m.Channel == chs[1] {
				got = true
			}
		}
	}
	if !refused || got {
		t.Fatalf("go-redis no longer has this trap (refused=%v, delivered=%v): shard.go's one-connection-per-master may be simplified", refused, got)
	}
}

// After a reconnect go-redis re-subscribes every shard channel of a
// PubSub in one SSUBSCRIBE, which a cluster refuses (CROSSSLOT) when they
// span slots, even on one master: the PubSub stays connected and delivers
// nothing (the same trap node-redis issue 2902 describes). The bus
// replaces the connection itself and sends one SSUBSCRIBE per slot.
func TestGoRedisTrapResubscribeIsCrossSlot(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 1)
	_, chs := shardChannels(t, c)
	master := c.MasterOf(bus.SlotOf(chs[0]))
	rdb := master.Client()
	defer rdb.Close()
	ctx := context.Background()
	ps := rdb.SSubscribe(ctx)
	defer ps.Close()
	for _, ch := range chs {
		if err := ps.SSubscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatalf("SSUBSCRIBE %s alone: %v", ch, err)
		}
	}
	if err := rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	crossSlot := false
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && !crossSlot {
		_, err := ps.ReceiveTimeout(ctx, 200*time.Millisecond)
		crossSlot = err != nil && strings.HasPrefix(err.Error(), "CROSSSLOT")
	}
	if !crossSlot {
		t.Fatal("go-redis no longer re-subscribes shard channels of several slots in one SSUBSCRIBE: shard.go's own resubscription may be simplified")
	}
}

// go-redis issue 3806 (fixed in v9.23.0, the pinned version): after a
// reconnect, a ClusterClient's sharded-only PubSub dialled a random node,
// not its channel's master, and delivered nothing from then on. Shown
// fixed here, three reconnects in a row (a random node among six would
// be the right one all three times once in 216): should an upgrade bring
// the trap back, this fails. The bus does not rely on it either way: its
// connections are its own, one per master (shard.go).
func TestGoRedisTrapResubscribesOnItsChannelsMaster(t *testing.T) {
	onlyOn(t, "cluster")
	c := redistest.StartCluster(t, 3, 1)
	chs, _ := shardChannels(t, c)
	ch := chs[1] // not on the first channel's master: no accident of order
	cc := c.Client()
	defer cc.Close()
	ctx := context.Background()
	ps := cc.SSubscribe(ctx, ch)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	master := c.MasterOf(bus.SlotOf(ch)).Client()
	defer master.Close()
	for round := range 3 {
		if err := master.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		delivered := false
		text := fmt.Sprint("after reconnect ", round)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !delivered; {
			if err := cc.SPublish(ctx, ch, text).Err(); err != nil {
				t.Fatal(err)
			}
			msg, err := ps.ReceiveTimeout(ctx, 200*time.Millisecond)
			m, ok := msg.(*redis.Message)
			delivered = err == nil && ok && m.Payload == text
		}
		if !delivered {
			t.Fatalf("round %d: nothing delivered on %s after the reconnect: go-redis re-subscribes on the wrong node again (issue 3806)", round, ch)
		}
	}
}
