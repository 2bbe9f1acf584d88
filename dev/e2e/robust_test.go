package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
	"github.com/oshirase/oshirase/wire"
)

// subConnections lists sub's connections to Redis (CLIENT LIST lines of
// client name oshirase-sub) and how many of them are in Pub/Sub mode.
func subConnections(t *testing.T, rdb *redis.Client) (all []string, pubsub int) {
	t.Helper()
	list, err := rdb.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		if !strings.Contains(line, " name=oshirase-sub ") {
			continue
		}
		all = append(all, line)
		for _, f := range strings.Fields(line) {
			if flags, ok := strings.CutPrefix(f, "flags="); ok && strings.Contains(flags, "P") {
				pubsub++
			}
		}
	}
	return all, pubsub
}

// 3. 2,000 subscriptions for 2,000 users: sub holds one Pub/Sub connection
// to Redis and at most 4 connections in all (the Pub/Sub one, count writes,
// history reads, one spare) — not one per subscription.
func TestRedisConnectionsStayConstant(t *testing.T) {
	// Not an init-timeout test: a loaded machine must not fail it.
	s := startStack(t, "INIT_TIMEOUT=30s")
	rdb := s.redis.Client()
	defer rdb.Close()
	ctx := context.Background()

	first := connect(t, s.sub, gqlws.TransportWS)
	subscribe(t, first, "1", "user-first")
	s.pub.WaitReceivers("user-first", 1)
	before, _ := subConnections(t, rdb)

	const users = 2000
	clients := make([]*gqlws.Client, users)
	t.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	})
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	errs := make(chan error, users)
	for i := range users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := gqlws.Connect(s.sub.WSURL(), gqlws.TransportWS, nil)
			if err == nil {
				clients[i] = c
				err = c.Subscribe("1", fmt.Sprintf("user-%d", i))
			}
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "2000 more personal channels subscribed", func() bool {
		chs, _ := rdb.PubSubChannels(ctx, "oshirase:v1:{default/p/*").Result()
		return len(chs) == users+1
	})
	s.pub.WaitReceivers("user-1999", 1)

	after, pubsub := subConnections(t, rdb)
	t.Logf("redis connections from sub: %d with one subscription, %d with %d (%d in Pub/Sub mode)", len(before), len(after), users+1, pubsub)
	if pubsub != 1 || len(after) > 4 {
		t.Fatalf("sub holds %d redis connections (%d in Pub/Sub mode) for %d subscriptions, %d for one; want one Pub/Sub connection and at most 4 in all\n%s",
			len(after), pubsub, users+1, len(before), strings.Join(after, "\n"))
	}
}

// 4. Subscribers that stop reading while flooded with large notices — one
// over WebSocket, one over SSE — are cut off by the write deadline; another
// user keeps getting every notice promptly all the while — from the start
// of the flood until both stalled connections are closed — each within
// half of WRITE_TIMEOUT, so that a delivery held up by a stalled socket's
// blocked write fails the test. The queue holds the whole flood, so that
// the write deadline, not the queue bound, ends the stalled connections
// (TestSlowConsumerIsToldWhy covers the queue).
func TestStalledClientDoesNotFreezeOthers(t *testing.T) {
	// Flood twice what the kernel may buffer for the stalled socket, so that
	// a write to it surely blocks.
	wmemMax := 4 << 20
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			wmemMax, _ = strconv.Atoi(f[2])
		}
	}
	const writeTimeout, size, senders = 10 * time.Second, 4000, 8
	rounds := (2*wmemMax + 1<<20) / size
	s := startStack(t, fmt.Sprint("QUEUE_SIZE=", rounds+64), fmt.Sprint("WRITE_TIMEOUT=", writeTimeout))
	dialStalled(t, s.sub.WSURL(), "stalled")
	openStalledSSE(t, s.sub.URL+"/graphql", "stalled")
	s.pub.WaitReceivers("stalled", 2)
	healthy := connect(t, s.sub, gqlws.TransportWS)
	subscribe(t, healthy, "1", "healthy")
	s.pub.WaitReceivers("healthy", 1)

	// The healthy user's notices, one after another, until told to stop.
	stop := make(chan struct{})
	pinged := make(chan error, 1)
	pings := 0
	go func() {
		for ; ; pings++ {
			select {
			case <-stop:
				pinged <- nil
				return
			default:
			}
			want := fmt.Sprintf("ping %d", pings)
			start := time.Now()
			if _, err := s.pub.Send("healthy", want); err != nil {
				pinged <- fmt.Errorf("send %q: %w", want, err)
				return
			}
			n, _, err := healthy.NextNotification(writeTimeout / 2)
			if err != nil || n.Text != want {
				pinged <- fmt.Errorf("healthy user waited %s for %q while another client stalled, got %q, %v; want it well within WRITE_TIMEOUT (%s)",
					time.Since(start).Round(time.Millisecond), want, n.Text, err, writeTimeout)
				return
			}
		}
	}()

	big := strings.Repeat("x", size)
	var reached atomic.Int64 // flood notices the stalled client was still subscribed for
	var fwg sync.WaitGroup
	floodErrs := make(chan error, senders)
	for w := range senders {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			for i := w; i < rounds; i += senders {
				n, err := s.pub.Send("stalled", fmt.Sprintf("%d %s", i, big[:size-8]))
				if err != nil {
					floodErrs <- fmt.Errorf("flood notice %d: %w", i, err)
					return
				}
				reached.Add(int64(n))
			}
		}()
	}
	fwg.Wait()
	close(floodErrs)
	for err := range floodErrs {
		t.Fatal(err)
	}
	if got := reached.Load(); got < int64(wmemMax/size) {
		t.Fatalf("only %d flood notices reached the stalled client; want more than its socket can buffer (%d)", got, wmemMax/size)
	}
	// Until the write deadline cuts both stalled clients off — the healthy
	// subscription and connection are all that is left — or the healthy
	// user misses a notice.
	deadline := time.Now().Add(writeTimeout + 20*time.Second)
	for metric(t, s.sub, "oshirase_sub_connections") != 1 || metric(t, s.sub, "oshirase_sub_subscriptions") != 1 {
		select {
		case err := <-pinged:
			t.Fatal(err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections and %d subscriptions %s after the flood; want the stalled ones cut off by their write deadline (%s), only the healthy one left",
				metric(t, s.sub, "oshirase_sub_connections"), metric(t, s.sub, "oshirase_sub_subscriptions"), writeTimeout+20*time.Second, writeTimeout)
		}
	}
	close(stop)
	if err := <-pinged; err != nil {
		t.Fatal(err)
	}
	t.Logf("the healthy user got %d notices, each within %s, while %d deliveries of %d flood notices reached the stalled clients (two subscribers)", pings, writeTimeout/2, reached.Load(), rounds)
	// Cut off by the write deadline or, when the flood outgrew
	// WRITE_QUEUE_BYTES first, by the queue's byte bound: slow consumers
	// either way, counted once each.
	if wt, sc := metricLabeled(t, s.sub, "oshirase_sub_disconnects_total", "reason", "write_timeout"),
		metricLabeled(t, s.sub, "oshirase_sub_disconnects_total", "reason", "slow_consumer"); wt+sc != 2 {
		t.Fatalf("disconnects: %d write_timeout, %d slow_consumer; want 2 in all (the stalled WebSocket and SSE stream)", wt, sc)
	}
	if got := send(t, s.pub, "stalled", "after the cut-off"); got != 0 {
		t.Fatalf("receivedUsers for the cut-off clients = %d, want 0", got)
	}
}

// smallReceiveBuffer dials with a 4 KB socket receive buffer, so that a
// reader that stops reading stalls its sender soon.
func smallReceiveBuffer(network, addr string) (net.Conn, error) {
	nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	return nd.Dial(network, addr)
}

// openStalledSSE subscribes over SSE with a tiny receive buffer and then
// never reads the stream.
func openStalledSSE(t *testing.T, url, user string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": `subscription{onNotificationReceived(userName:"` + user + `"){text}}`})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	tr := &http.Transport{DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
		return smallReceiveBuffer(network, addr)
	}}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close(); tr.CloseIdleConnections() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("SSE subscription: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// dialStalled subscribes with a tiny receive buffer and then never reads.
func dialStalled(t *testing.T, url, user string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{
		Subprotocols: []string{gqlws.TransportWS},
		NetDial:      smallReceiveBuffer,
	}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	must := func(v any) {
		if err := c.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	must(map[string]any{"type": "connection_init"})
	if _, _, err := c.ReadMessage(); err != nil { // connection_ack
		t.Fatal(err)
	}
	must(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription{onNotificationReceived(userName:"` + user + `"){text}}`}})
	return c
}

// awaitLive sends notices to user until c receives one on it: proof that
// c's subscription is live, not merely requested. Notices for other
// subscriptions of the same user may arrive in between and are skipped.
func awaitLive(pub *harness.Service, c *gqlws.Client, user, tag string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	text := "live " + tag
	for time.Now().Before(deadline) {
		if _, err := pub.Send(user, text); err != nil {
			return err
		}
		for {
			n, _, err := c.NextNotification(200 * time.Millisecond)
			if err != nil {
				select {
				case <-c.Closed():
					return err
				default:
				}
				break // nothing yet: send again
			}
			if n.Text == text {
				return nil
			}
		}
	}
	return fmt.Errorf("subscription to %q not live after %s", user, timeout)
}

// 7. 1,000 clients connect, subscribe — each subscription proven live by a
// notice it receives — and leave: goroutines return to their baseline and
// Redis keeps no subscribed channel.
func TestConnectDisconnectLeavesNothingBehind(t *testing.T) {
	// A leak test, not an init-timeout one: a loaded test machine must not
	// turn slow handshakes into failures.
	s := startStack(t, "INIT_TIMEOUT=30s")
	rdb := s.redis.Client()
	defer rdb.Close()
	ctx := context.Background()
	baseline := metric(t, s.sub, "go_goroutines")

	const n = 1000
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	errs := make(chan error, n)
	var failed atomic.Bool // stop starting clients after the first failure
	for i := range n {
		if failed.Load() {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := gqlws.Connect(s.sub.WSURL(), []string{gqlws.TransportWS, gqlws.LegacyWS}[i%2], nil)
			if err != nil {
				failed.Store(true)
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			fail := func(format string, args ...any) {
				failed.Store(true)
				c.Close()
				errs <- fmt.Errorf("client %d: "+format, append([]any{i}, args...)...)
			}
			user := fmt.Sprintf("churn-%d", i%300)
			if err := c.Subscribe("1", user); err != nil {
				fail("subscribe: %w", err)
				return
			}
			if err := awaitLive(s.pub, c, user, fmt.Sprint(i), 10*time.Second); err != nil {
				fail("%w", err)
				return
			}
			if i%3 == 0 {
				if err := c.Unsubscribe("1"); err != nil {
					fail("unsubscribe: %w", err)
					return
				}
			}
			if i%2 == 0 {
				c.Close()
			} else {
				_ = c.Conn.Close() // abrupt: no close frame
			}
		}()
	}
	wg.Wait()
	close(errs)
	if len(errs) > 0 {
		t.Fatalf("%d of the clients started failed, first: %v", len(errs), <-errs)
	}
	// Every channel of a notice (sub's delivery probe channel, outside
	// "oshirase:v1:", stays).
	eventually(t, 30*time.Second, "no channels left in redis", func() bool {
		chs, err := rdb.PubSubChannels(ctx, "oshirase:v1:*").Result()
		return err == nil && len(chs) == 0
	})
	eventually(t, 30*time.Second, "goroutines back to baseline", func() bool {
		return metric(t, s.sub, "go_goroutines") <= baseline+2
	})
	if got := metric(t, s.sub, "oshirase_sub_subscriptions"); got != 0 {
		t.Fatalf("%d subscriptions left", got)
	}
	keys, _ := rdb.Keys(ctx, "oshirase:v1:count:*").Result()
	if len(keys) != 0 {
		t.Fatalf("count keys left: %v", keys)
	}
}

// 8. Redis is killed and restarted on the same port: sockets stay open,
// notices flow again within seconds and receivedUsers is right again; while
// Redis is down the mutation fails with a clear error, not a hang.
func TestRedisRestart(t *testing.T) {
	s := startStack(t, "SUBSCRIBE_TIMEOUT=1s")
	c := connect(t, s.sub, gqlws.TransportWS)
	legacy := connect(t, s.sub, gqlws.LegacyWS)
	subscribe(t, c, "1", "phoenix")
	subscribe(t, legacy, "1", "phoenix")
	s.pub.WaitReceivers("phoenix", 2)
	// A notice received by both proves them live, so that what follows is
	// the outage of live subscriptions.
	if got := send(t, s.pub, "phoenix", "before"); got != 2 {
		t.Fatalf("receivedUsers = %d, want 2", got)
	}
	expectNotice(t, c, "before")
	expectNotice(t, legacy, "before")

	s.redis.Stop()
	start := time.Now()
	_, err := s.pub.Send("phoenix", "into the void")
	if err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("send while redis is down: %v; want an 'unavailable' error", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("mutation took %s to fail while redis was down", d)
	}
	t.Logf("mutation failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	eventually(t, 10*time.Second, "sub reports not ready", func() bool {
		resp, err := http.Get(s.sub.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})

	// A new subscription while Redis is down gets a clear error in time,
	// not an endless wait.
	late := connect(t, s.sub, gqlws.TransportWS)
	subscribe(t, late, "late", "latecomer") // another channel: phoenix's must not be touched during the outage
	start = time.Now()
	if got := untilDone(t, late, "late"); !strings.Contains(got, "UNAVAILABLE") {
		t.Fatalf("subscribing while redis is down: %s", got)
	}
	t.Logf("subscription refused after %s while redis was down", time.Since(start).Round(time.Millisecond))

	s.redis.Start()
	restarted := time.Now()
	// Redis came back empty. sub rewrites every count at once when it sees
	// its re-subscriptions confirmed; its periodic refresh (COUNT_TTL/3) is
	// minutes away (harness.SubCountTTL), so only that rewrite can pass this.
	s.pub.WaitReceiversWithin("phoenix", 2, 15*time.Second)
	t.Logf("receivedUsers right again %s after the restart", time.Since(restarted).Round(time.Millisecond))
	if got := send(t, s.pub, "phoenix", "back again"); got != 2 {
		t.Fatalf("receivedUsers = %d, want 2", got)
	}
	expectNotice(t, c, "back again")
	expectNotice(t, legacy, "back again")
	if code, _ := c.CloseStatus(); code != 0 {
		t.Fatalf("websocket closed with %d during the outage", code)
	}
	s.sub.WaitReady(10 * time.Second)
}

var _ = harness.FreePort

// An SSE subscriber that falls behind is dropped too: its stream ends
// without "complete", so graphql-sse retries instead of taking the drop for
// the end of the subscription.
func TestSlowSSEConsumerIsDropped(t *testing.T) {
	s := startStack(t, "QUEUE_SIZE=4")
	st := openSSE(t, s.sub, "slowsse")
	s.pub.WaitReceivers("slowsse", 1)
	burst(t, s, "slowsse", 2000)
	timeout := time.After(20 * time.Second)
	for ended := false; !ended; {
		select {
		case ev, ok := <-st.events:
			if !ok {
				ended = true
			} else if ev.Event == "complete" {
				t.Fatal("complete on a slow-consumer drop; graphql-sse would not retry")
			}
		case <-timeout:
			t.Fatal("slow SSE consumer not dropped")
		}
	}
	if got := metric(t, s.sub, "oshirase_sub_slow_dropped_total"); got != 1 {
		t.Fatalf("slow_dropped_total = %d", got)
	}
	eventually(t, 10*time.Second, "one disconnect of a slow consumer", func() bool {
		return metricLabeled(t, s.sub, "oshirase_sub_disconnects_total", "reason", "slow_consumer") == 1
	})
}

// burst publishes n notices to user straight into Redis, faster than any
// socket drains.
func burst(t *testing.T, s *stack, user string, n int) {
	t.Helper()
	rdb := s.redis.Client()
	defer rdb.Close()
	ch, _ := wire.PersonChannel("default", user)
	pipe := rdb.Pipeline()
	for i := range n {
		m, _ := wire.NewMessage(fmt.Sprint("burst ", i), wire.ScopePerson, time.Now())
		p, _ := m.Encode()
		pipe.Publish(context.Background(), string(ch), p)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A subscriber that falls behind by more than its queue is dropped and told
// why: close code 1013 with the reason, and it is counted.
func TestSlowConsumerIsToldWhy(t *testing.T) {
	s := startStack(t, "QUEUE_SIZE=4")
	c := connect(t, s.sub, gqlws.TransportWS)
	subscribe(t, c, "1", "slowpoke")
	s.pub.WaitReceivers("slowpoke", 1)

	burst(t, s, "slowpoke", 2000)
	select {
	case <-c.Closed():
	case <-time.After(20 * time.Second):
		t.Fatal("slow consumer not dropped")
	}
	if code, reason := c.CloseStatus(); code != 1013 || !strings.Contains(reason, "slow consumer") {
		t.Fatalf("closed with %d %q, want 1013 slow consumer", code, reason)
	}
	// The drop is no end of the stream: a "complete" before the close
	// would tell the client not to resubscribe when it reconnects.
	for m := range c.Msgs {
		if m.Type == "complete" || m.Type == "error" {
			t.Fatalf("got %s for %q before the 1013 close", m.Type, m.ID)
		}
	}
	if got := metric(t, s.sub, "oshirase_sub_slow_dropped_total"); got != 1 {
		t.Fatalf("slow_dropped_total = %d", got)
	}
	eventually(t, 10*time.Second, "one disconnect of a slow consumer", func() bool {
		return metricLabeled(t, s.sub, "oshirase_sub_disconnects_total", "reason", "slow_consumer") == 1
	})
}
