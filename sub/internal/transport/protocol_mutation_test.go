package transport_test

// Tests aimed at mutants that survived `make mutation` (docs/mutation.md):
// WebSocket control frames, the legacy init timeout, shapes held by live
// subscriptions only, and which cursor an SSE stream resumes from.

import (
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/oshirase/oshirase/sub/internal/transport"
	"github.com/oshirase/oshirase/wire"
)

// A WebSocket ping is answered with a pong of the same data and leaves the
// connection as it was: notices still flow, also after the pong's own
// write deadline (gorilla's 1s) has passed, since the engine bounds its
// writes itself. A client's close is answered with the same code.
func TestControlFramesKeepTheConnection(t *testing.T) {
	e := start(t, nil)
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(e.url, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pongs := make(chan string, 4)
	conn.SetPongHandler(func(s string) error { pongs <- s; return nil })
	type read struct {
		m   msg
		err error
	}
	reads := make(chan read, 100)
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			var m msg
			if err == nil {
				err = json.Unmarshal(data, &m)
			}
			reads <- read{m, err}
			if err != nil {
				return
			}
		}
	}()
	next := func(typ string) msg {
		t.Helper()
		for {
			select {
			case r := <-reads:
				if r.err != nil {
					t.Fatalf("waiting for %s: %v", typ, r.err)
				}
				if r.m.Type == "ping" {
					continue
				}
				if r.m.Type != typ {
					t.Fatalf("got %s %s, want %s", r.m.Type, r.m.Payload, typ)
				}
				return r.m
			case <-time.After(10 * time.Second):
				t.Fatalf("no %s within 10s", typ)
			}
		}
	}
	send := func(s string) {
		t.Helper()
		if err := conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"type":"connection_init"}`)
	next("connection_ack")
	send(subscribe("1", "pia"))
	e.live(1, person("pia"))

	if err := conn.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-pongs:
		if got != "are you there" {
			t.Fatalf("pong %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pong within 10s")
	}
	time.Sleep(1500 * time.Millisecond)
	e.publish(person("pia"), "after the pong")
	if got := text(t, next("next")); got != "after the pong" {
		t.Fatalf("got %q", got)
	}

	if err := conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case r := <-reads:
			if r.err == nil {
				continue // a notice or ping sent before our close arrived
			}
			var ce *websocket.CloseError
			if !errors.As(r.err, &ce) || ce.Code != websocket.CloseNormalClosure {
				t.Fatalf("after the client's close: %v, want the close echoed with 1000", r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the client's close was not answered within 10s")
		}
		break
	}
	eventually(t, "the connection and its subscription released", func() bool {
		return e.ts.Stats().Open == 0 && e.hub.Stats().Subscriptions == 0
	})
}

// The legacy subprotocol's init timeout closes with 1002, as gqlgen did.
func TestLegacyInitTimeout(t *testing.T) {
	e := start(t, func(c *transport.Config) { c.InitTimeout = 200 * time.Millisecond })
	l := e.dial("graphql-ws")
	if code, reason := l.closed(); code != 1002 || !strings.Contains(reason, "initialisation timeout") {
		t.Fatalf("closed with %d %q, want 1002 connection initialisation timeout", code, reason)
	}
	c := e.dial("graphql-transport-ws")
	if code, _ := c.closed(); code != transport.CloseInitTimeout {
		t.Fatalf("graphql-transport-ws: closed with %d, want %d", code, transport.CloseInitTimeout)
	}
}

// A subscription that resumes holds its shape while it is live (another
// subscription of the same selection shares it); one whose cursor is
// refused holds none. On both WebSocket and SSE.
func TestResumedSubscriptionHoldsItsShape(t *testing.T) {
	e := start(t, nil)
	c := e.dial("graphql-transport-ws")
	c.ack()
	c.send(subscribeAfter("first", "quinn", ""))
	e.live(1, person("quinn"), company())
	e.record(person("quinn"), wire.ScopePerson, "one")
	cur := noticeOf(t, c.expect("next", "first").Payload).Cursor

	c.send(subscribeAfter("resumed", "quinn", cur))
	e.live(2, person("quinn"), company())
	c.send(`{"type":"complete","id":"first"}`)
	e.live(1, person("quinn"), company())
	if n := e.n.Shapes(); n != 1 {
		t.Fatalf("%d shapes with the resumed subscription live, want 1", n)
	}
	e.record(person("quinn"), wire.ScopePerson, "two")
	if got := noticeOf(t, c.expect("next", "resumed").Payload).Text; got != "two" {
		t.Fatalf("resumed subscription got %q", got)
	}
	c.send(`{"type":"complete","id":"resumed"}`)
	eventually(t, "the shape released", func() bool { return e.n.Shapes() == 0 })

	c.send(subscribeAfter("refused", "quinn", "not a cursor"))
	c.expect("next", "refused")
	c.expect("complete", "refused")
	if n := e.n.Shapes(); n != 0 {
		t.Fatalf("%d shapes held after a refused cursor, want 0", n)
	}

	// SSE: the same.
	conn, r := e.openSSEAfter("quinn", cur, "")
	deadline(t, conn)
	e.live(1, person("quinn"), company())
	if n := e.n.Shapes(); n != 1 {
		t.Fatalf("%d shapes with a resumed SSE stream live, want 1", n)
	}
	if got := nextEvent(t, r); noticeOf(t, []byte(got.data)).Text != "two" {
		t.Fatalf("resumed SSE stream: %+v", got)
	}
	conn.Close()
	eventually(t, "the SSE stream's shape released", func() bool { return e.n.Shapes() == 0 && e.hub.Stats().Subscriptions == 0 })
	conn, r = e.openSSEAfter("quinn", "not a cursor", "")
	deadline(t, conn)
	if ev := nextEvent(t, r); ev.name != "next" || !strings.Contains(ev.data, "BAD_USER_INPUT") {
		t.Fatalf("SSE with a refused cursor: %+v", ev)
	}
	if n := e.n.Shapes(); n != 0 {
		t.Fatalf("%d shapes held after an SSE stream's refused cursor, want 0", n)
	}
}

// deadline bounds the reads of a test's SSE stream: a missing event fails
// the test within 10s instead of hanging it.
func deadline(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
}

// An SSE request that names both a cursor (after) and a Last-Event-ID
// resumes from after: the header is what an EventSource adds by itself.
func TestSSEAfterWinsOverLastEventID(t *testing.T) {
	e := start(t, nil)
	conn, r := e.openSSEAfter("rita", "", "")
	deadline(t, conn)
	e.live(1, person("rita"), company())
	var ids []string
	for _, text := range []string{"n1", "n2", "n3"} {
		e.record(person("rita"), wire.ScopePerson, text)
		ev := nextEvent(t, r)
		if got := noticeOf(t, []byte(ev.data)).Text; got != text || ev.id == "" {
			t.Fatalf("event %+v, want %s with an id", ev, text)
		}
		ids = append(ids, ev.id)
	}
	conn.Close()
	eventually(t, "the stream released", func() bool { return e.hub.Stats().Subscriptions == 0 })
	conn, r = e.openSSEAfter("rita", ids[0], ids[2])
	deadline(t, conn)
	for _, want := range []string{"n2", "n3"} {
		if got := noticeOf(t, []byte(nextEvent(t, r).data)).Text; got != want {
			t.Fatalf("resumed with after=n1 and Last-Event-ID=n3: got %q, want %q", got, want)
		}
	}
}
