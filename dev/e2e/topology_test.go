package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// The real binaries on a Redis Cluster (REDIS_CLUSTER_ADDRS) and on a
// Sentinel-managed Redis (REDIS_SENTINEL_ADDRS / _MASTER): users whose
// channels lie on different masters get their notices with the right
// receivedUsers, and after a master is killed, notices flow again.

func TestServicesOnRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	addrs := "REDIS_CLUSTER_ADDRS=" + strings.Join(c.Addrs(), ",")
	pub := harness.StartPub(t, c.Nodes[0], addrs)
	sub := harness.StartSub(t, c.Nodes[0], addrs, "REDIS_PROBE_INTERVAL=500ms")
	users := make([]string, 12) // 12 users: every master owns some of them
	cl := connect(t, sub, gqlws.TransportWS)
	for i := range users {
		users[i] = fmt.Sprint("user-", i)
		subscribe(t, cl, fmt.Sprint(i), users[i])
	}
	for _, u := range users {
		pub.WaitReceivers(u, 1)
	}
	for _, u := range users {
		if n := send(t, pub, u, "hi "+u); n != 1 {
			t.Fatalf("%s: receivedUsers %d, want 1", u, n)
		}
		expectNotice(t, cl, "hi "+u)
	}
	c.KillMaster(c.Masters()[0])
	sub.WaitReady(30 * time.Second)
	for _, u := range users {
		pub.WaitReceivers(u, 1)
		send(t, pub, u, "again "+u)
		expectNotice(t, cl, "again "+u)
	}
}

func TestServicesOnSentinel(t *testing.T) {
	s := redistest.StartSentinel(t)
	env := []string{"REDIS_SENTINEL_ADDRS=" + strings.Join(s.SentinelAddrs(), ","), "REDIS_SENTINEL_MASTER=" + redistest.MasterName}
	pub := harness.StartPub(t, s.Master(), env...)
	sub := harness.StartSub(t, s.Master(), append(env, "REDIS_PROBE_INTERVAL=500ms")...)
	cl := connect(t, sub, gqlws.TransportWS)
	subscribe(t, cl, "1", "bob")
	pub.WaitReceivers("bob", 1)
	send(t, pub, "bob", "before")
	expectNotice(t, cl, "before")
	s.KillMaster()
	sub.WaitReady(30 * time.Second)
	pub.WaitReceivers("bob", 1)
	send(t, pub, "bob", "after")
	expectNotice(t, cl, "after")
}
