// Package e2e tests pub and sub end to end: the real binaries, a real
// redis-server of each test's own, and WebSocket clients speaking both
// subprotocols.
package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

type stack struct {
	redis *harness.Redis
	pub   *harness.Service
	sub   *harness.Service
}

func startStack(t *testing.T, subEnv ...string) *stack {
	t.Helper()
	r := harness.StartRedis(t)
	return &stack{redis: r, pub: harness.StartPub(t, r), sub: harness.StartSub(t, r, subEnv...)}
}

func connect(t *testing.T, s *harness.Service, protocol string) *gqlws.Client {
	t.Helper()
	c, err := gqlws.Connect(s.WSURL(), protocol, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", protocol, err)
	}
	t.Cleanup(c.Close)
	return c
}

func subscribe(t *testing.T, c *gqlws.Client, id, user string) {
	t.Helper()
	if err := c.Subscribe(id, user); err != nil {
		t.Fatal(err)
	}
}

func send(t *testing.T, pub *harness.Service, to, text string) int {
	t.Helper()
	n, err := pub.Send(to, text)
	if err != nil {
		t.Fatalf("send to %q: %v", to, err)
	}
	return n
}

func expectNotice(t *testing.T, c *gqlws.Client, text string) gqlws.Notification {
	t.Helper()
	n, _, err := c.NextNotification(10 * time.Second)
	if err != nil {
		t.Fatalf("waiting for %q: %v", text, err)
	}
	if n.Text != text {
		t.Fatalf("got notice %q, want %q", n.Text, text)
	}
	return n
}

func expectSilence(t *testing.T, c *gqlws.Client, d time.Duration) {
	t.Helper()
	if n, _, err := c.NextNotification(d); err == nil {
		t.Fatalf("unexpected notice %+v", n)
	}
}

// metric reads one counter or gauge from a service's /metrics (the first
// of its series, for one without labels the only one).
func metric(t *testing.T, s *harness.Service, name string) int64 {
	t.Helper()
	return metricOf(t, s, name, nil)
}

// metricLabeled reads name{label="value"}; a series not there yet is 0.
func metricLabeled(t *testing.T, s *harness.Service, name, label, value string) int64 {
	t.Helper()
	return metricOf(t, s, name, &dto.LabelPair{Name: &label, Value: &value})
}

func metricOf(t *testing.T, s *harness.Service, name string, want *dto.LabelPair) int64 {
	t.Helper()
	return metricIn(t, scrape(t, s), name, want)
}

// metricIn reads a counter or gauge from one scrape (want: nil, or the
// series' label).
func metricIn(t *testing.T, fams map[string]*dto.MetricFamily, name string, want *dto.LabelPair) int64 {
	t.Helper()
	fam := fams[name]
	if fam == nil {
		t.Fatalf("metric %s not found", name)
	}
	for _, m := range fam.GetMetric() {
		if want != nil && !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == want.GetName() && l.GetValue() == want.GetValue()
		}) {
			continue
		}
		switch {
		case m.Counter != nil:
			return int64(m.GetCounter().GetValue())
		case m.Gauge != nil:
			return int64(m.GetGauge().GetValue())
		case m.Untyped != nil:
			return int64(m.GetUntyped().GetValue())
		}
		t.Fatalf("metric %s is a %v, not a counter or gauge", name, fam.GetType())
	}
	if want != nil {
		return 0
	}
	t.Fatalf("metric %s has no series", name)
	return 0
}

// histogram reads a histogram's count and sum from a service's /metrics.
func histogram(t *testing.T, s *harness.Service, name string) (count uint64, sum float64) {
	t.Helper()
	return histogramIn(t, scrape(t, s), name)
}

// histogramIn reads a histogram's count and sum from one scrape.
func histogramIn(t *testing.T, fams map[string]*dto.MetricFamily, name string) (count uint64, sum float64) {
	t.Helper()
	fam := fams[name]
	if fam == nil || fam.GetType() != dto.MetricType_HISTOGRAM || len(fam.GetMetric()) != 1 {
		t.Fatalf("metric %s: %v, want one histogram", name, fam)
	}
	h := fam.GetMetric()[0].GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

// scrape reads a service's /metrics with the Prometheus text parser.
func scrape(t *testing.T, s *harness.Service) map[string]*dto.MetricFamily {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not in the Prometheus text format: %v", err)
	}
	return fams
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// 1. A notice to bob reaches bob with the right text and a publish-time
// timestamp; alice receives nothing.
func TestNoticeReachesOnlyItsRecipient(t *testing.T) {
	s := startStack(t)
	bob := connect(t, s.sub, gqlws.TransportWS)
	alice := connect(t, s.sub, gqlws.TransportWS)
	subscribe(t, bob, "1", "bob")
	subscribe(t, alice, "1", "alice")
	s.pub.WaitReceivers("bob", 1)
	s.pub.WaitReceivers("alice", 1)

	before := time.Now().Unix()
	if got := send(t, s.pub, "bob", "your order shipped"); got != 1 {
		t.Fatalf("receivedUsers = %d, want 1", got)
	}
	after := time.Now().Unix()
	n := expectNotice(t, bob, "your order shipped")
	if n.Timestamp < before || n.Timestamp > after || n.ID == "" || n.Scope != "PERSON" {
		t.Fatalf("notice %+v: timestamp outside [%d, %d], no id, or scope not PERSON", n, before, after)
	}
	expectSilence(t, alice, 500*time.Millisecond)
	if got := metric(t, s.pub, "oshirase_pub_published_total"); got < 3 { // probes and the notice
		t.Fatalf("pub published_total = %d", got)
	}
	// The probes and the notice are one document: gqlgen ran the first,
	// the plan of it (pub/graph.Prepared) answered the others.
	if got, all := metric(t, s.pub, "oshirase_pub_prepared_total"), metric(t, s.pub, "oshirase_pub_published_total"); got < 1 || got >= all {
		t.Fatalf("pub prepared_total = %d of %d publishes", got, all)
	}
}

// 2. Two subscriptions of bob and one of alice: one copy each, and
// receivedUsers follows the live subscriptions — on one sub instance and
// on two sharing one Redis.
func TestOneCopyPerSubscriptionAndLiveCounts(t *testing.T) {
	for _, instances := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d sub instances", instances), func(t *testing.T) {
			s := startStack(t)
			subs := []*harness.Service{s.sub}
			if instances == 2 {
				subs = append(subs, harness.StartSub(t, s.redis))
			}
			tab1 := connect(t, subs[0], gqlws.TransportWS)
			tab2 := connect(t, subs[len(subs)-1], gqlws.LegacyWS)
			alice := connect(t, subs[0], gqlws.TransportWS)
			subscribe(t, tab1, "a", "bob")
			subscribe(t, tab2, "b", "bob")
			subscribe(t, alice, "c", "alice")
			s.pub.WaitReceivers("bob", 2)

			if got := send(t, s.pub, "bob", "two tabs"); got != 2 {
				t.Fatalf("receivedUsers = %d, want 2", got)
			}
			n1, n2 := expectNotice(t, tab1, "two tabs"), expectNotice(t, tab2, "two tabs")
			if n1 != n2 {
				t.Fatalf("the two tabs got %+v and %+v; want the same notice (id, timestamp stamped once at publish)", n1, n2)
			}
			expectSilence(t, tab1, 300*time.Millisecond)
			expectSilence(t, tab2, 10*time.Millisecond)
			expectSilence(t, alice, 10*time.Millisecond)

			tab2.Close()
			s.pub.WaitReceivers("bob", 1)
			if got := send(t, s.pub, "bob", "one tab"); got != 1 {
				t.Fatalf("after one tab closed: receivedUsers = %d, want 1", got)
			}
			expectNotice(t, tab1, "one tab")

			if err := tab1.Unsubscribe("a"); err != nil {
				t.Fatal(err)
			}
			s.pub.WaitReceivers("bob", 0)
			if got := send(t, s.pub, "nobody-online", "hello?"); got != 0 {
				t.Fatalf("offline user: receivedUsers = %d, want 0", got)
			}
		})
	}
}

// 5. Both subprotocols deliver, and subscriptions multiplex on one socket.
func TestBothSubprotocolsDeliver(t *testing.T) {
	s := startStack(t)
	for _, proto := range []string{gqlws.TransportWS, gqlws.LegacyWS} {
		t.Run(proto, func(t *testing.T) {
			c := connect(t, s.sub, proto)
			if got := c.Conn.Subprotocol(); got != proto {
				t.Fatalf("negotiated %q, want %q", got, proto)
			}
			user := "user-" + proto
			subscribe(t, c, "1", user)
			subscribe(t, c, "2", user+"-other")
			s.pub.WaitReceivers(user, 1)
			s.pub.WaitReceivers(user+"-other", 1)
			send(t, s.pub, user, "hello "+proto)
			n, id, err := c.NextNotification(10 * time.Second)
			if err != nil || n.Text != "hello "+proto || id != "1" {
				t.Fatalf("got %+v on %q, %v", n, id, err)
			}
		})
	}
}

// 6. 10,000 notices to one user arrive complete, in order, once each.
func TestTenThousandInOrder(t *testing.T) {
	s := startStack(t)
	c := connect(t, s.sub, gqlws.TransportWS)
	subscribe(t, c, "1", "bulk")
	s.pub.WaitReceivers("bulk", 1)

	const n = 10000
	errs := make(chan error, 1)
	go func() {
		for i := range n {
			if got, err := s.pub.Send("bulk", strconv.Itoa(i)); err != nil || got != 1 {
				errs <- fmt.Errorf("send %d: receivedUsers %d, %v", i, got, err)
				return
			}
		}
		errs <- nil
	}()
	ids := map[string]bool{}
	for i := range n {
		got, _, err := c.NextNotification(30 * time.Second)
		if err != nil {
			t.Fatalf("after %d notices: %v", i, err)
		}
		if got.Text != strconv.Itoa(i) {
			t.Fatalf("notice %d: got %q (out of order, missing or duplicate)", i, got.Text)
		}
		if ids[got.ID] {
			t.Fatalf("duplicate id %s", got.ID)
		}
		ids[got.ID] = true
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	expectSilence(t, c, 300*time.Millisecond)
}

// 9 (part). A message someone else PUBLISHed on a channel that is not in
// our format is counted and skipped; the subscriber gets the next notice.
func TestMalformedMessageIsCountedAndSkipped(t *testing.T) {
	s := startStack(t)
	c := connect(t, s.sub, gqlws.TransportWS)
	subscribe(t, c, "1", "mallory-target")
	s.pub.WaitReceivers("mallory-target", 1)

	rdb := s.redis.Client()
	defer rdb.Close()
	ch := "oshirase:v1:{default/p/mallory-target}"
	for _, junk := range []string{"not json", `{"v":1}`, `{"v":1,"id":"x","ts":1,"scope":"galaxy"}`, strings.Repeat("[", 100000)} {
		if n, err := rdb.Publish(context.Background(), ch, junk).Result(); err != nil || n != 1 {
			t.Fatalf("raw publish: %d, %v", n, err)
		}
	}
	send(t, s.pub, "mallory-target", "still fine")
	expectNotice(t, c, "still fine")
	if got := metric(t, s.sub, "oshirase_sub_malformed_total"); got != 4 {
		t.Fatalf("malformed_total = %d, want 4", got)
	}
	if !strings.Contains(s.sub.Log(), "skipping malformed message") {
		t.Fatal("malformed message not logged")
	}
}

var _ = io.Discard
