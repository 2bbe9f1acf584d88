package e2e_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// getStatus GETs url with a client deadline far past any bound under test,
// so that a hang shows as a long elapsed time, not as a client timeout.
func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Fault 1: a Redis that accepts connections and never answers (SIGSTOP)
// for 10 s must not outlast any timeout the README documents: a publish
// fails with UNAVAILABLE after PUBLISH_TIMEOUT (the first, and one at the
// end of the freeze), a new subscription after SUBSCRIBE_TIMEOUT, both
// /readyz answer 503 in bounded time and sub's /metrics says Redis is
// down. When Redis comes back (SIGCONT), so does everything else, by
// itself: readiness, oshirase_sub_redis_up, notices to the subscription
// made before the freeze.
//
// The bounds below are each timeout plus a few seconds of slack for a busy
// machine; before the fix go-redis ignored the deadlines and waited for its
// own 5s read timeout (pub's /readyz: several of them, retried).
func TestFrozenRedisTimeoutsHold(t *testing.T) {
	r := harness.StartRedis(t)
	pub := harness.StartPub(t, r, "PUBLISH_TIMEOUT=500ms")
	sub := harness.StartSub(t, r, "SUBSCRIBE_TIMEOUT=500ms")
	bob := connect(t, sub, gqlws.TransportWS)
	subscribe(t, bob, "1", "bob")
	pub.WaitReceivers("bob", 1)
	send(t, pub, "bob", "before")
	expectNotice(t, bob, "before")

	r.Freeze()
	frozenAt := time.Now()
	const slack = 3 * time.Second
	const freeze = 10 * time.Second

	var err error
	took := timed(func() { _, err = pub.Send("bob", "into the freeze") })
	if err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
		t.Fatalf("publish to a frozen Redis: %v, want UNAVAILABLE", err)
	}
	if took > 500*time.Millisecond+slack {
		t.Fatalf("publish to a frozen Redis answered after %s; PUBLISH_TIMEOUT is 500ms", took)
	}
	t.Logf("publish: UNAVAILABLE after %s", took)

	var status int
	var body string
	took = timed(func() { status, body = getStatus(t, pub.URL+"/readyz") })
	if status != http.StatusServiceUnavailable || took > time.Second+slack {
		t.Fatalf("pub /readyz with a frozen Redis: %d %q after %s, want 503 within about 1s", status, body, took)
	}
	t.Logf("pub /readyz: %d after %s", status, took)
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "i/o") {
		t.Fatalf("pub /readyz leaks internals: %q", body)
	}

	carol := connect(t, sub, gqlws.TransportWS)
	var got string
	took = timed(func() {
		subscribe(t, carol, "1", "carol")
		got = untilDone(t, carol, "1")
	})
	if !strings.Contains(got, "UNAVAILABLE") || took > 500*time.Millisecond+slack {
		t.Fatalf("subscribing with a frozen Redis: %q after %s, want UNAVAILABLE within SUBSCRIBE_TIMEOUT (500ms)", got, took)
	}
	t.Logf("subscribe: UNAVAILABLE after %s", took)

	// sub notices the silence of its Pub/Sub connection (no PONG) and
	// stops reporting ready.
	frozen := time.Now()
	eventually(t, 20*time.Second, "sub /readyz to answer 503", func() bool {
		status, _ := getStatus(t, sub.URL+"/readyz")
		return status == http.StatusServiceUnavailable
	})
	t.Logf("sub /readyz: 503 after %s more", time.Since(frozen))
	if got := metric(t, sub, "oshirase_sub_redis_up"); got != 0 {
		t.Fatalf("oshirase_sub_redis_up = %d while sub is not ready", got)
	}

	// Still frozen at the end of the freeze: a publish fails as fast as the
	// first did (no connection of pub's pool is left stuck).
	time.Sleep(time.Until(frozenAt.Add(freeze - time.Second)))
	took = timed(func() { _, err = pub.Send("bob", "late in the freeze") })
	if err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") || took > 500*time.Millisecond+slack {
		t.Fatalf("publish %s into the freeze: %v after %s, want UNAVAILABLE within PUBLISH_TIMEOUT (500ms)", time.Since(frozenAt).Round(time.Second), err, took)
	}
	if got := metric(t, pub, "oshirase_pub_failed_total"); got != 2 {
		t.Fatalf("oshirase_pub_failed_total = %d, want the 2 publishes into the freeze", got)
	}
	if count, sum := histogram(t, pub, "oshirase_pub_publish_duration_seconds"); count != uint64(metric(t, pub, "oshirase_pub_published_total")+2) || sum < 2*0.5 {
		t.Fatalf("publish durations: %d observed, %.2fs in all; want one per publish, the 2 failed ones at PUBLISH_TIMEOUT (500ms) each", count, sum)
	}
	time.Sleep(time.Until(frozenAt.Add(freeze)))

	r.Thaw()
	thawed := time.Now()
	pub.WaitReady(20 * time.Second)
	sub.WaitReady(20 * time.Second)
	t.Logf("after %s frozen, both ready again %s after the thaw", thawed.Sub(frozenAt).Round(100*time.Millisecond), time.Since(thawed).Round(time.Millisecond))
	if got := metric(t, sub, "oshirase_sub_redis_up"); got != 1 {
		t.Fatalf("oshirase_sub_redis_up = %d after the thaw", got)
	}
	pub.WaitReceivers("bob", 1)
	if n := send(t, pub, "bob", "after"); n != 1 {
		t.Fatalf("after the thaw receivedUsers = %d, want 1", n)
	}
	// The publish that timed out sat in Redis's socket buffer and may have
	// run on the thaw: UNAVAILABLE means "not known to be published".
	n, _, err := bob.NextNotification(10 * time.Second)
	if err == nil && n.Text == "into the freeze" {
		n, _, err = bob.NextNotification(10 * time.Second)
	}
	if err != nil || n.Text != "after" {
		t.Fatalf("after the thaw: %+v, %v; want the notice \"after\"", n, err)
	}
}
