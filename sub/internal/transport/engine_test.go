package transport_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/sub/internal/transport"
	"github.com/oshirase/oshirase/wire"
)

func (e *env) wsURL() string { return "ws" + strings.TrimPrefix(e.url, "http") }

// dialIdle connects, initialises and subscribes id to user's notices, with
// no goroutine on the client side: the connection then idles.
func (e *env) dialIdle(user string) *websocket.Conn {
	e.t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	c, _, err := d.Dial(e.wsURL(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"connection_init"}`)); err != nil {
		e.t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); err != nil { // connection_ack
		e.t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(subscribe("1", user))); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// openSSE opens a stream of user's notices over a raw TCP connection (an
// HTTP client would add goroutines of its own) and reads its head.
func (e *env) openSSE(user, query string) (net.Conn, *bufio.Reader) {
	e.t.Helper()
	host := strings.TrimPrefix(strings.TrimSuffix(e.url, "/graphql"), "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if query == "" {
		query = notices
	}
	body, _ := json.Marshal(map[string]any{"query": query, "variables": map[string]any{"u": user}})
	fmt.Fprintf(c, "POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: %d\r\n\r\n%s", host, len(body), body)
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		e.t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return c, r
}

// An idle connection costs one goroutine, WebSocket or SSE, however many
// subscriptions: nothing runs per subscription.
func TestOneGoroutinePerIdleConnection(t *testing.T) {
	e := start(t, nil)
	runtime.GC()
	base := settledGoroutines()
	const ws, sse = 200, 50
	for i := range ws {
		e.dialIdle(fmt.Sprint("ws-", i))
	}
	for i := range sse {
		e.openSSE(fmt.Sprint("sse-", i), "")
	}
	e.live(ws+sse, company())
	var delta int
	deadline := time.Now().Add(10 * time.Second)
	for {
		delta = runtime.NumGoroutine() - base
		if delta == ws+sse || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d idle connections (%d subscriptions): %d goroutines more", ws+sse, ws+sse, delta)
	if delta != ws+sse {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines for %d idle connections, want 1 each\n%s", delta, ws+sse, buf[:runtime.Stack(buf, true)])
	}
}

// settledGoroutines waits (up to 2 s) until the number of goroutines has
// not moved for 100 ms, and answers it: the server's start leaves some
// that end on their own (its first Redis round, the first probe), which
// must not be counted against the connections opened after.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for stable, deadline := 0, time.Now().Add(2*time.Second); stable < 5 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			stable++
		} else {
			stable, n = 0, m
		}
	}
	return n
}

// One notice to 1,000 subscriptions written in two shapes, spelled many
// ways (aliases, fragments, @include/@skip, __typename), is executed once
// per shape, and each subscription gets its shape's bytes.
func TestOneExecutionPerNoticeAndShape(t *testing.T) {
	e := start(t, nil)
	shapeA := []string{
		`subscription($u:String!){onNotificationReceived(userName:$u){id text}}`,
		`subscription($u:String!){onNotificationReceived(userName:$u){...F}} fragment F on Notification {id text}`,
		`subscription($u:String!,$y:Boolean=true){onNotificationReceived(userName:$u){id text @include(if:$y) scope @skip(if:$y)}}`,
		`subscription S($u:String!){onNotificationReceived(userName:$u){... on Notification {id} text id}}`,
	}
	shapeB := []string{
		`subscription($u:String!){onNotificationReceived(userName:$u){t: text __typename}}`,
		`subscription($u:String!){onNotificationReceived(userName:$u){...G}} fragment G on Notification {t: text ... @include(if: true) {__typename}}`,
	}
	const conns, perConn = 10, 100
	clients := make([]*client, conns)
	for i := range clients {
		c := e.dial("graphql-transport-ws")
		c.ack()
		for j := range perConn {
			q := shapeA[j%len(shapeA)]
			if j%2 == 1 {
				q = shapeB[j%len(shapeB)]
			}
			b, _ := json.Marshal(map[string]any{"id": fmt.Sprint(j), "type": "subscribe", "payload": map[string]any{
				"query": q, "variables": map[string]any{"u": fmt.Sprint("user-", i, "-", j)}}})
			c.send(string(b))
		}
		clients[i] = c
	}
	e.live(conns*perConn, company())
	if got := e.n.Shapes(); got != 2 {
		t.Fatalf("%d shapes, want 2", got)
	}
	before := e.n.Executions()
	e.publish(company(), "all hands at 5")
	got := map[int]string{} // shape → payload, identical for all of it
	for _, c := range clients {
		for range perConn {
			m := c.next()
			var j int
			if _, err := fmt.Sscan(m.ID, &j); err != nil || m.Type != "next" {
				t.Fatalf("got %s %q", m.Type, m.ID)
			}
			if p, ok := got[j%2]; ok && p != string(m.Payload) {
				t.Fatalf("one shape, two payloads:\n%s\n%s", p, m.Payload)
			}
			got[j%2] = string(m.Payload)
		}
	}
	if n := e.n.Executions() - before; n != 2 {
		t.Fatalf("%d executions for one notice to 2 shapes, want 2", n)
	}
	for shape, want := range map[int]string{
		0: `{"data":{"onNotificationReceived":{"id":"*","text":"all hands at 5"}}}`,
		1: `{"data":{"onNotificationReceived":{"t":"all hands at 5","__typename":"Notification"}}}`,
	} {
		var v struct {
			Data struct {
				N json.RawMessage `json:"onNotificationReceived"`
			} `json:"data"`
		}
		_ = json.Unmarshal([]byte(got[shape]), &v)
		var id struct{ ID string }
		_ = json.Unmarshal(v.Data.N, &id)
		if id.ID != "" {
			got[shape] = strings.Replace(got[shape], id.ID, "*", 1)
		}
		if got[shape] != want {
			t.Fatalf("shape %d rendered %s, want %s", shape, got[shape], want)
		}
	}
}

// A subscriber that falls behind by more than QUEUE_SIZE is closed with
// 1013 and the reason, and counted; another on the same channel is not.
func TestSlowConsumerClosedWith1013(t *testing.T) {
	e := start(t, func(c *transport.Config) { c.QueueSize = 1 })
	slow := e.dial("graphql-transport-ws")
	slow.ack()
	slow.send(subscribe("1", "slow"))
	e.live(1, company())
	p := notice(t, "burst")
	for range 2000 { // faster than any flush: the queue overflows
		e.hub.Deliver(company(), p)
	}
	for {
		select {
		case m := <-slow.msgs:
			if m.Type != "next" {
				t.Fatalf("got %s", m.Type)
			}
			continue
		case <-slow.done:
		case <-time.After(10 * time.Second):
			t.Fatal("slow consumer not closed")
		}
		break
	}
	if slow.code != 1013 || !strings.Contains(slow.reason, "slow consumer") {
		t.Fatalf("closed with %d %q, want 1013 slow consumer", slow.code, slow.reason)
	}
	if st := e.ts.Stats(); st.SlowClosed != 1 {
		t.Fatalf("stats %+v, want 1 slow consumer closed", st)
	}
	eventually(t, "the subscription released", func() bool { return e.hub.Stats().Subscriptions == 0 })
	eventually(t, "the disconnect counted once, as a slow consumer", func() bool {
		return e.ts.Disconnects("slow_consumer") == 1 && e.ts.Disconnects("client_closed") == 0
	})
}

// A client that stops reading is cut off by its queue's byte bound while
// another keeps getting every notice; the bound counts bytes, not notices.
func TestStalledClientCostsOthersNothing(t *testing.T) {
	e := start(t, func(c *transport.Config) { c.WriteQueueBytes = 256 << 10; c.QueueSize = 1 << 20 })
	stalled := dialStalled(t, e.wsURL())
	healthy := e.dial("graphql-transport-ws")
	healthy.ack()
	healthy.send(subscribe("1", "healthy"))
	e.live(2, company())
	big := notice(t, strings.Repeat("x", 16<<10))
	for i := range 2000 { // 32 MB: more than any socket buffers
		deliverWithin(t, 5*time.Second, e.hub, company(), big)
		if m := healthy.next(); m.Type != "next" {
			t.Fatalf("notice %d: got %s", i, m.Type)
		}
	}
	eventually(t, "the stalled client closed as a slow consumer", func() bool {
		return e.ts.Stats().SlowClosed == 1 && e.ts.Stats().Open == 1
	})
	_ = stalled
}

// deliverWithin hands payload to the hub and fails the test, at once and
// saying why, if delivery does not return within d: the hub and the sinks
// must never block on a subscriber, and a regression that does must not
// show up as a hang until the package timeout.
func deliverWithin(t *testing.T, d time.Duration, h *hub.Hub, ch wire.Channel, payload []byte) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Deliver(ch, payload)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("Deliver blocked for %s: a stalled subscriber held up delivery", d)
	}
}

// dialStalled subscribes with a tiny receive buffer, then never reads.
func dialStalled(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{
		Subprotocols: []string{"graphql-transport-ws"},
		NetDial: func(network, addr string) (net.Conn, error) {
			nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
				return c.Control(func(fd uintptr) {
					_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				})
			}}
			return nd.Dial(network, addr)
		},
	}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"connection_init"}`))
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(subscribe("1", "stalled")))
	return c
}

func notice(t *testing.T, text string) []byte {
	t.Helper()
	m, err := wire.NewMessage(text, wire.ScopeCompany, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := m.Encode()
	return p
}

var _ = context.Background

// After a burst of subscriptions the transport gives the garbage back to
// the OS once they stop, even when they came on a few connections (with
// several subscriptions per connection they go on after the last socket
// opened). Counted, not timed: ten connections are too few to count as a
// burst of connects, a thousand subscriptions on them are a burst.
func TestMemoryReleasedAfterASubscriptionBurst(t *testing.T) {
	e := start(t, func(c *transport.Config) { c.MaxSubscriptions = 200 })
	const conns, perConn = 10, 100
	clients := make([]*client, conns)
	for i := range clients {
		clients[i] = e.dial("graphql-transport-ws")
		clients[i].ack()
	}
	if n := e.ts.Stats().MemoryReleases; n != 0 {
		t.Fatalf("%d releases after %d connects, before any subscription", n, conns)
	}
	for i, c := range clients {
		for j := range perConn {
			c.send(subscribe(fmt.Sprint(j), fmt.Sprintf("u%d-%d", i, j)))
		}
	}
	e.live(conns * perConn)
	eventually(t, "memory given back after the burst", func() bool { return e.ts.Stats().MemoryReleases >= 1 })
}
