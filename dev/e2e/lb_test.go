package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// Several sub instances behind a real nginx (issue 11): three instances on
// one Redis, clients connecting only to nginx, which spreads them (least
// connections) and moves them when an instance goes.

// lbStack is pub, three sub instances in jwt mode on one Redis, and nginx
// in front of the subs.
type lbStack struct {
	redis *harness.Redis
	pub   *harness.Service
	subs  []*harness.Service
	lb    *harness.Nginx
}

func startLB(t *testing.T, subEnv ...string) *lbStack {
	t.Helper()
	return startLBOn(t, harness.StartRedis(t), nil, subEnv...)
}

// startLBOn is startLB's stack on r, with env (REDIS_CLUSTER_ADDRS of a
// cluster r is a node of) for pub and every sub.
func startLBOn(t *testing.T, r *harness.Redis, env []string, subEnv ...string) *lbStack {
	t.Helper()
	common := append([]string{"AUTH_MODE=jwt", "JWT_SECRET=" + jwtSecret, "ALLOWED_ORIGINS=" + frontend}, env...)
	s := &lbStack{redis: r}
	s.pub = harness.StartPub(t, r, append(slices.Clone(common), "PUBLISHER_API_KEYS=acme-key-0123456789:acme,"+platformKey+":*")...)
	for range 3 {
		s.subs = append(s.subs, harness.StartSub(t, r, append(slices.Clone(common), subEnv...)...))
	}
	s.lb = harness.StartNginx(t, s.subs...)
	return s
}

// connectUser connects user of tenant and store through nginx with
// protocol and subscribes it to its notices.
func (s *lbStack) connectUser(t *testing.T, protocol, user, tenant, store string) *gqlws.Client {
	t.Helper()
	c, err := gqlws.Connect(s.lb.WSURL(), protocol, map[string]any{"Authorization": "Bearer " + userToken(t, user, tenant, store)})
	if err != nil {
		t.Fatalf("connect %s through nginx: %v", user, err)
	}
	t.Cleanup(c.Close)
	subscribe(t, c, "1", user)
	return c
}

// connections reads oshirase_sub_connections from one instance's /metrics.
func connections(t *testing.T, s *harness.Service) int {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatalf("%s metrics: %v", s.URL, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oshirase_sub_connections "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("oshirase_sub_connections %q: %v", v, err)
			}
			return int(f)
		}
	}
	t.Fatalf("%s: no oshirase_sub_connections in /metrics", s.URL)
	return 0
}

// spread is how many connections each instance holds.
func (s *lbStack) spread(t *testing.T) []int {
	var n []int
	for _, sub := range s.subs {
		n = append(n, connections(t, sub))
	}
	return n
}

// Notices of every scope reach every subscriber through nginx, and
// receivedUsers counts the subscribers of all three instances: nine users
// of one store, spread three to each instance.
func TestLBDeliversEveryScopeAcrossInstances(t *testing.T) {
	s := startLB(t)
	const users = 9
	var clients []*gqlws.Client
	for i := range users {
		proto := gqlws.TransportWS
		if i%2 == 1 {
			proto = gqlws.LegacyWS
		}
		clients = append(clients, s.connectUser(t, proto, fmt.Sprint("lb-", i), "acme", "s1"))
	}
	everyone := map[string]any{"scope": "PUBLIC"}
	waitReceiversAs(t, s.pub, platformKey, everyone, users)
	if n := s.spread(t); slices.Min(n) < 1 || n[0]+n[1]+n[2] != users {
		t.Fatalf("connections per instance %v: want all %d spread over the three", n, users)
	}
	t.Logf("connections per instance: %v", s.spread(t))

	for _, sc := range []struct {
		scope string
		key   string
		input map[string]any
	}{
		{"STORE", "acme-key-0123456789", map[string]any{"scope": "STORE", "to": "s1"}},
		{"COMPANY", "acme-key-0123456789", map[string]any{"scope": "COMPANY"}},
		{"PUBLIC", platformKey, everyone},
	} {
		in := map[string]any{"text": "to every " + sc.scope}
		for k, v := range sc.input {
			in[k] = v
		}
		if n, err := publishAs(t, s.pub, sc.key, in); err != nil || n != users {
			t.Fatalf("%s: receivedUsers %d, %v; want %d across the instances", sc.scope, n, err, users)
		}
		for _, c := range clients {
			expectScope(t, expectNotice(t, c, "to every "+sc.scope), sc.scope)
		}
	}
	for i, c := range clients {
		in := map[string]any{"scope": "PERSON", "to": fmt.Sprint("lb-", i), "text": fmt.Sprint("just for ", i)}
		if n, err := publishAs(t, s.pub, "acme-key-0123456789", in); err != nil || n != 1 {
			t.Fatalf("PERSON lb-%d: receivedUsers %d, %v; want 1", i, n, err)
		}
		expectScope(t, expectNotice(t, c, fmt.Sprint("just for ", i)), "PERSON")
	}
	for _, c := range clients {
		expectSilence(t, c, 100*time.Millisecond)
	}
}

// resumer is a client as the README's recipe writes one: it connects
// through nginx, subscribes with the last cursor it received as after, and
// on any close reconnects and resubscribes the same way — what graphql-ws
// with retry does. It records every notice (probes left out), every close
// code and when each connection ended.
type resumer struct {
	name, user, token, url string

	mu       sync.Mutex
	last     string
	texts    []string
	errs     []string
	connects int
	closes   []int       // close codes, -1: no close frame (the socket broke)
	closedAt []time.Time // when each connection ended
	open     bool
}

func (r *resumer) run(ctx context.Context) {
	for ctx.Err() == nil {
		c, err := gqlws.Connect(r.url, gqlws.TransportWS, map[string]any{"Authorization": "Bearer " + r.token})
		if err != nil {
			time.Sleep(50 * time.Millisecond) // nginx found no instance: retry
			continue
		}
		r.mu.Lock()
		r.connects++
		vars := map[string]any{"u": r.user}
		if r.last != "" {
			vars["a"] = r.last
		}
		r.open = true
		r.mu.Unlock()
		b, _ := json.Marshal(map[string]any{"id": "r", "type": "subscribe", "payload": map[string]any{"query": resumeQuery, "variables": vars}})
		_ = c.SendRaw(string(b))
		r.read(ctx, c)
		c.Close()
		code, _ := c.CloseStatus()
		r.mu.Lock()
		r.open = false
		r.closes = append(r.closes, code)
		r.closedAt = append(r.closedAt, time.Now())
		r.mu.Unlock()
	}
}

// read handles one connection's messages until it ends or ctx does.
func (r *resumer) read(ctx context.Context, c *gqlws.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-c.Msgs:
			if !ok {
				return
			}
			switch m.Type {
			case "next":
				var p struct {
					Data *struct {
						N struct{ Text, Cursor string } `json:"onNotificationReceived"`
					} `json:"data"`
					Errors json.RawMessage `json:"errors"`
				}
				r.mu.Lock()
				if err := json.Unmarshal(m.Payload, &p); err != nil || p.Data == nil {
					r.errs = append(r.errs, string(m.Payload))
				} else {
					r.last = p.Data.N.Cursor
					if !strings.HasPrefix(p.Data.N.Text, "probe:") {
						r.texts = append(r.texts, p.Data.N.Text)
					}
				}
				r.mu.Unlock()
			case "complete", "error":
				r.mu.Lock()
				r.errs = append(r.errs, m.Type+" "+string(m.Payload))
				r.mu.Unlock()
				return
			}
		}
	}
}

func (r *resumer) snapshot() (texts []string, connects int, closes []int, errs []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.texts), r.connects, slices.Clone(r.closes), slices.Clone(r.errs)
}

// startResumers starts n resumers of acme users lb-0… (store s1) through
// the stack's nginx, stopped at cleanup.
func (s *lbStack) startResumers(t *testing.T, n int) []*resumer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var rs []*resumer
	for i := range n {
		user := fmt.Sprint("lb-", i)
		r := &resumer{name: user, user: user, token: userToken(t, user, "acme", "s1"), url: s.lb.WSURL()}
		rs = append(rs, r)
		wg.Add(1)
		go func() { defer wg.Done(); r.run(ctx) }()
		// One at a time, so that least_conn spreads them evenly.
		eventually(t, 20*time.Second, user+" connected", func() bool { _, c, _, _ := r.snapshot(); return c == 1 })
	}
	waitReceiversAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "COMPANY"}, n)
	return rs
}

// publishSeries publishes COMPANY notices "<prefix>-0"… every interval
// until n are out, and returns their texts in order.
func (s *lbStack) publishSeries(t *testing.T, prefix string, n int, interval time.Duration, during func(i int)) []string {
	t.Helper()
	var texts []string
	for i := range n {
		text := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := publishAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "COMPANY", "text": text}); err != nil {
			t.Fatalf("publish %s: %v", text, err)
		}
		texts = append(texts, text)
		if during != nil {
			during(i)
		}
		time.Sleep(interval)
	}
	return texts
}

// expectExactly waits until every resumer has received want, then checks
// that it received exactly want: in order, nothing twice, nothing else.
func expectExactly(t *testing.T, rs []*resumer, want []string) {
	t.Helper()
	for _, r := range rs {
		eventually(t, 30*time.Second, r.name+" to receive "+want[len(want)-1], func() bool {
			texts, _, _, _ := r.snapshot()
			return slices.Contains(texts, want[len(want)-1])
		})
		texts, connects, closes, errs := r.snapshot()
		if !slices.Equal(texts, want) {
			t.Errorf("%s (%d connections, closes %v) received %v\nwant exactly %v", r.name, connects, closes, texts, want)
		}
		if len(errs) > 0 {
			t.Errorf("%s: errors %v", r.name, errs)
		}
	}
}

// busiest is the index of the instance holding the most connections.
func (s *lbStack) busiest(t *testing.T) (int, int) {
	n := s.spread(t)
	i := 0
	for j := range n {
		if n[j] > n[i] {
			i = j
		}
	}
	return i, n[i]
}

// An instance SIGKILLed with clients connected (issue 11, issue 12's
// fault 3): nginx closes their sockets; each client reconnects through
// nginx, which skips the dead instance, and resumes after its last cursor
// on another one — every notice published across the kill arrives exactly
// once, in order. COUNT_TTL=3s so that the dead instance's counts expire
// and receivedUsers is right again within seconds.
func TestLBKillOneInstanceClientsResumeOnOthers(t *testing.T) {
	s := startLB(t, "COUNT_TTL=3s")
	const users = 9
	rs := s.startResumers(t, users)
	victim, held := s.busiest(t)
	if held < 2 {
		t.Fatalf("connections per instance %v: want the clients spread", s.spread(t))
	}
	t.Logf("connections per instance %v; killing instance %d", s.spread(t), victim)

	want := s.publishSeries(t, "kill", 40, 25*time.Millisecond, func(i int) {
		if i == 10 {
			s.subs[victim].Kill()
		}
	})
	expectExactly(t, rs, want)
	moved := 0
	for _, r := range rs {
		if _, connects, _, _ := r.snapshot(); connects > 1 {
			moved++
		}
	}
	if moved != held {
		t.Errorf("%d clients reconnected, want the %d of the killed instance", moved, held)
	}
	alive := []*harness.Service{}
	for i, sub := range s.subs {
		if i != victim {
			alive = append(alive, sub)
		}
	}
	if n := connections(t, alive[0]) + connections(t, alive[1]); n != users {
		t.Errorf("the two instances left hold %d connections, want all %d", n, users)
	}
	// The dead instance's counts expire (COUNT_TTL); then receivedUsers
	// is exact again.
	waitReceiversAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "COMPANY"}, users)
}

// A deploy behind nginx (issue 12's drain): the busiest instance gets
// SIGTERM while notices flow. Its /readyz answers 503 "draining" at once
// while its sockets stay open for DRAIN_DELAY; then it closes them with
// 1001 spread over DRAIN_WINDOW, its clients come back through nginx on
// the other instances and resume with nothing lost or doubled, and it
// exits 0 within SHUTDOWN_TIMEOUT.
func TestLBDrainMovesClientsWithoutLoss(t *testing.T) {
	const delay, window = 1500 * time.Millisecond, 3 * time.Second
	s := startLB(t, "DRAIN_DELAY="+delay.String(), "DRAIN_WINDOW="+window.String(), "SHUTDOWN_TIMEOUT=15s", "COUNT_TTL=3s")
	const users = 12
	rs := s.startResumers(t, users)
	victim, held := s.busiest(t)
	if held < 3 {
		t.Fatalf("connections per instance %v: want the clients spread", s.spread(t))
	}
	t.Logf("connections per instance %v; draining instance %d", s.spread(t), victim)
	v := s.subs[victim]

	var signalled time.Time
	want := s.publishSeries(t, "drain", 60, 100*time.Millisecond, func(i int) {
		if i != 5 {
			return
		}
		signalled = time.Now()
		v.Terminate()
		// At once: not ready, still serving every socket it had.
		eventually(t, 5*time.Second, "/readyz 503 draining", func() bool {
			resp, err := http.Get(v.URL + "/readyz")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var b strings.Builder
			_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
			return resp.StatusCode == 503 && strings.Contains(b.String(), "draining")
		})
		if since := time.Since(signalled); since < delay/2 {
			if n := connections(t, v); n != held {
				t.Errorf("%s after SIGTERM (DRAIN_DELAY %s) the instance holds %d connections, want all %d still open", since, delay, n, held)
			}
		}
	})
	select {
	case <-v.Exited():
	case <-time.After(20 * time.Second):
		t.Fatal("the drained instance did not exit within 20s (SHUTDOWN_TIMEOUT 15s)")
	}
	if code := v.ExitCode(); code != 0 {
		t.Errorf("drained instance exited with %d, want 0", code)
	}
	expectExactly(t, rs, want)

	var closedAt []time.Duration
	for _, r := range rs {
		r.mu.Lock()
		if len(r.closes) > 0 {
			if r.closes[0] != 1001 {
				t.Errorf("%s: closed with %d, want 1001", r.name, r.closes[0])
			}
			closedAt = append(closedAt, r.closedAt[0].Sub(signalled))
		}
		r.mu.Unlock()
	}
	slices.Sort(closedAt)
	t.Logf("close times after SIGTERM: %v", closedAt)
	if len(closedAt) != held {
		t.Fatalf("%d clients were closed, want the %d of the drained instance", len(closedAt), held)
	}
	// None before DRAIN_DELAY; spread over a good part of the window.
	if closedAt[0] < delay*9/10 {
		t.Errorf("first close %s after SIGTERM, before DRAIN_DELAY %s", closedAt[0], delay)
	}
	if span := closedAt[len(closedAt)-1] - closedAt[0]; span < window/3 {
		t.Errorf("closes span %s, want them spread over DRAIN_WINDOW %s", span, window)
	}
	waitReceiversAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "COMPANY"}, users)
}

// SSE streams through nginx: every event passes at once — the keep-alive
// comments of a few bytes as well as the notices — and the streams spread
// over the instances. (Two things keep nginx from holding events back:
// sub.conf's proxy_buffering off, and sub's X-Accel-Buffering: no on every
// stream; either one alone passes this test.)
func TestLBStreamsSSE(t *testing.T) {
	s := startLB(t, "KEEPALIVE_INTERVAL=300ms")
	lb := &harness.Service{Name: "nginx", URL: s.lb.URL} // openSSE needs only the URL
	var streams []*sseStream
	for i := range 3 {
		user := fmt.Sprint("lb-sse-", i)
		streams = append(streams, openSSE(t, lb, user, "Authorization", "Bearer "+userToken(t, user, "acme", "s1")))
	}
	for i, st := range streams {
		if st.resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d through nginx: HTTP %d", i, st.resp.StatusCode)
		}
		// Three ": ping" comments of a few bytes each, as they are written.
		deadline := time.After(5 * time.Second)
		for pings := 0; pings < 3; {
			select {
			case ev, open := <-st.events:
				if !open {
					t.Fatalf("stream %d through nginx ended after %d pings", i, pings)
				}
				if ev.Comment == "ping" {
					pings++
				}
			case <-deadline:
				t.Fatalf("stream %d: %d keep-alive comments through nginx within 5s, want 3 at KEEPALIVE_INTERVAL=300ms: buffered?\n%s", i, pings, s.lb.Log())
			}
		}
	}
	waitReceiversAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "COMPANY"}, len(streams))
	if n := s.spread(t); n[0]+n[1]+n[2] != len(streams) || slices.Max(n) != 1 {
		t.Fatalf("streams per instance %v, want one on each", n)
	}
	if _, err := publishAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "COMPANY", "text": "sse through nginx"}); err != nil {
		t.Fatal(err)
	}
	for i, st := range streams {
		if text, _ := st.nextNotice(t, 5*time.Second); text != "sse through nginx" {
			t.Fatalf("stream %d: %q", i, text)
		}
	}
}
