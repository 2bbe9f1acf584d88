package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// Fault 2: sub's Pub/Sub connection is killed from Redis (CLIENT KILL TYPE
// pubsub). sub notices, connects again and resubscribes by itself: the
// sockets of its clients stay open, notices reach them again within
// seconds, receivedUsers stays right, and sub is ready again.
func TestPubSubConnectionKilled(t *testing.T) {
	s := startStack(t)
	bob := connect(t, s.sub, gqlws.TransportWS)
	carol := connect(t, s.sub, gqlws.LegacyWS)
	subscribe(t, bob, "1", "bob")
	subscribe(t, carol, "1", "carol")
	s.pub.WaitReceivers("bob", 1)
	s.pub.WaitReceivers("carol", 1)
	rdb := s.redis.Client()
	defer rdb.Close()
	if _, pubsub := subConnections(t, rdb); pubsub != 1 {
		t.Fatalf("sub holds %d Pub/Sub connections before the kill, want 1", pubsub)
	}

	for round := range 2 { // and once more: the new connection is no special case
		killed, err := rdb.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Int()
		if err != nil || killed != 1 {
			t.Fatalf("CLIENT KILL TYPE pubsub: %d killed, %v; want sub's one connection", killed, err)
		}
		start := time.Now()
		for _, c := range []struct {
			user   string
			client *gqlws.Client
		}{{"bob", bob}, {"carol", carol}} {
			if err := awaitLive(s.pub, c.client, c.user, "after the kill", 15*time.Second); err != nil {
				t.Fatalf("round %d: %v\nsub log:\n%s", round, err, s.sub.Log())
			}
		}
		t.Logf("round %d: notices flow again %s after the kill", round, time.Since(start).Round(time.Millisecond))
		eventually(t, 10*time.Second, "one Pub/Sub connection again", func() bool {
			_, pubsub := subConnections(t, rdb)
			return pubsub == 1
		})
		s.sub.WaitReady(10 * time.Second)
		if got := metric(t, s.sub, "oshirase_sub_redis_up"); got != 1 {
			t.Fatalf("oshirase_sub_redis_up = %d after the reconnect", got)
		}
		if got := send(t, s.pub, "bob", "counted"); got != 1 {
			t.Fatalf("receivedUsers for bob = %d after the kill, want 1", got)
		}
		expectNotice(t, bob, "counted")
	}
	for _, c := range []*gqlws.Client{bob, carol} {
		if code, _ := c.CloseStatus(); code != 0 {
			t.Fatalf("a client's WebSocket closed with %d when Redis dropped sub's connection", code)
		}
	}
}

// Fault 2b: sub's Pub/Sub connection stays up but delivers nothing (a TCP
// proxy between sub and Redis stops forwarding what Redis sends, as a stuck
// middlebox does; pub talks to Redis directly). sub's delivery probe does
// not come back: /readyz answers 503 with that reason, the connection is
// replaced, and the clients' subscriptions, their sockets never closed,
// receive again with receivedUsers right.
func TestSilencedPubSubConnectionReplaced(t *testing.T) {
	r := harness.StartRedis(t)
	proxy := redistest.StartProxy(t, r.Addr)
	pub := harness.StartPub(t, r)
	sub := harness.StartSub(t, r, "REDIS_URL="+proxy.Addr, "REDIS_PROBE_INTERVAL=300ms")
	bob := connect(t, sub, gqlws.TransportWS)
	subscribe(t, bob, "1", "bob")
	pub.WaitReceivers("bob", 1)
	if err := awaitLive(pub, bob, "bob", "before", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	silenced := time.Now()
	if n := proxy.Silence(); n == 0 {
		t.Fatal("no connection of sub's to silence")
	}
	var reason string
	eventually(t, 20*time.Second, "sub /readyz to answer 503", func() bool {
		var status int
		status, reason = getStatus(t, sub.URL+"/readyz")
		return status == http.StatusServiceUnavailable
	})
	if !strings.Contains(reason, "delivery probe") {
		t.Fatalf("/readyz's 503 says %q, want the delivery probe's reason", reason)
	}
	t.Logf("not ready %s after the silence: %q", time.Since(silenced).Round(time.Millisecond), strings.TrimSpace(reason))
	if err := awaitLive(pub, bob, "bob", "after the silence", 30*time.Second); err != nil {
		t.Fatalf("%v\nsub log:\n%s", err, sub.Log())
	}
	sub.WaitReady(20 * time.Second)
	if got := metric(t, sub, "oshirase_sub_redis_replaced_total"); got < 1 {
		t.Fatalf("oshirase_sub_redis_replaced_total = %d: the silent connection was not replaced", got)
	}
	if got := send(t, pub, "bob", "counted"); got != 1 {
		t.Fatalf("receivedUsers for bob = %d after the replacement, want 1", got)
	}
	expectNotice(t, bob, "counted")
	if code, _ := bob.CloseStatus(); code != 0 {
		t.Fatalf("bob's WebSocket closed with %d", code)
	}
	t.Logf("delivering again, ready, %s after the silence", time.Since(silenced).Round(time.Millisecond))
}
