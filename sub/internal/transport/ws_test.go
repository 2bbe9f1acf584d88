package transport_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/sub/internal/transport"
)

func TestCloseCodes(t *testing.T) {
	e := start(t, func(c *transport.Config) { c.InitTimeout = 500 * time.Millisecond })
	sub := `{"query":"subscription { onNotificationReceived(userName: \"bob\") { id } }"}`
	for _, tc := range []struct {
		name   string
		ack    bool
		send   []string
		code   int
		reason string
	}{
		{"not JSON", false, []string{`{`}, 4400, "JSON object"},
		{"not an object", false, []string{`[1]`}, 4400, "JSON object"},
		{"no type", true, []string{`{"id":"1"}`}, 4400, "missing the 'type'"},
		{"type not a string", true, []string{`{"type":1}`}, 4400, "'type' property to be a string"},
		{"unknown type", true, []string{`{"type":"start","id":"1","payload":` + sub + `}`}, 4400, `Invalid message 'type' property "start"`},
		{"server's type", true, []string{`{"type":"next","id":"1","payload":{}}`}, 4400, "Unexpected message of type next"},
		{"init payload not an object", false, []string{`{"type":"connection_init","payload":"token"}`}, 4400, "'payload'"},
		{"subscribe without id", true, []string{`{"type":"subscribe","payload":` + sub + `}`}, 4400, "'id'"},
		{"subscribe with empty id", true, []string{`{"type":"subscribe","id":"","payload":` + sub + `}`}, 4400, "'id'"},
		{"subscribe without query", true, []string{`{"type":"subscribe","id":"1","payload":{}}`}, 4400, "'query'"},
		{"subscribe with bad variables", true, []string{`{"type":"subscribe","id":"1","payload":{"query":"{ok}","variables":[]}}`}, 4400, "'variables'"},
		{"complete without id", true, []string{`{"type":"complete"}`}, 4400, "'id'"},
		{"subscribe before init", false, []string{subscribe("1", "bob")}, 4401, "Unauthorized"},
		{"no init", false, nil, 4408, "Connection initialisation timeout"},
		{"id in use", true, []string{subscribe("a", "bob"), subscribe("a", "carol")}, 4409, "Subscriber for a already exists"},
		{"second init", true, []string{`{"type":"connection_init"}`}, 4429, "Too many initialisation requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial("graphql-transport-ws")
			if tc.ack {
				c.ack()
			}
			for _, s := range tc.send {
				c.send(s)
			}
			code, reason := c.closed()
			if code != tc.code || !strings.Contains(reason, tc.reason) {
				t.Fatalf("closed with %d %q, want %d %q", code, reason, tc.code, tc.reason)
			}
		})
	}
	eventually(t, "every connection and subscription released", func() bool {
		return e.ts.Stats().Open == 0 && e.hub.Stats().Subscriptions == 0
	})
}

// A refused connection_init closes with 4403 on both subprotocols; the
// legacy one says why in a connection_error first.
func TestRefusedInit(t *testing.T) {
	e := start(t, func(c *transport.Config) {
		c.Init = func(ctx context.Context, p map[string]any) (context.Context, error) {
			if p["token"] == "good" {
				return ctx, nil
			}
			return ctx, errors.New("auth: bad token")
		}
	})
	c := e.dial("graphql-transport-ws")
	c.send(`{"type":"connection_init","payload":{"token":"bad"}}`)
	if code, reason := c.closed(); code != 4403 || reason != "Forbidden" {
		t.Fatalf("closed with %d %q, want 4403 Forbidden", code, reason)
	}
	l := e.dial("graphql-ws")
	l.send(`{"type":"connection_init","payload":{"token":"bad"}}`)
	if m := l.expect("connection_error", ""); !strings.Contains(string(m.Payload), "bad token") {
		t.Fatalf("connection_error %s", m.Payload)
	}
	if code, _ := l.closed(); code != 4403 {
		t.Fatalf("legacy closed with %d, want 4403", code)
	}
	ok := e.dial("graphql-transport-ws")
	ok.send(`{"type":"connection_init","payload":{"token":"good"}}`)
	ok.expect("connection_ack", "")
}

func TestPingBeforeInit(t *testing.T) {
	e := start(t, nil)
	c := e.dial("graphql-transport-ws")
	c.send(`{"type":"ping","payload":{"n":1}}`)
	if m := c.expect("pong", ""); string(m.Payload) != `{"n":1}` {
		t.Fatalf("pong payload %s", m.Payload)
	}
	c.send(`{"type":"pong"}`) // unsolicited pongs are allowed and ignored
	c.ack()
	c.send(`{"type":"ping"}`)
	c.expect("pong", "")
}

// A client may reuse an id once it has completed it; nothing for the old
// operation follows the client's complete, and the new one gets its own.
func TestIDReuseAfterClientComplete(t *testing.T) {
	e := start(t, nil)
	c := e.dial("graphql-transport-ws")
	c.ack()
	c.send(subscribe("a", "dana"))
	e.live(1, person("dana"))
	e.publish(person("dana"), "first")
	if got := text(t, c.expect("next", "a")); got != "first" {
		t.Fatalf("got %q", got)
	}
	c.send(`{"type":"complete","id":"a"}`)
	c.send(`{"type":"complete","id":"never-started"}`) // ignored
	c.send(subscribe("a", "erin"))
	e.live(1, person("erin"))
	e.publish(person("dana"), "for the old subscription")
	e.publish(person("erin"), "for the new one")
	if got := text(t, c.expect("next", "a")); got != "for the new one" {
		t.Fatalf("got %q after reusing the id", got)
	}
	c.send(subscribe("a", "erin")) // still live: now it is a duplicate
	if code, _ := c.closed(); code != 4409 {
		t.Fatalf("closed with %d, want 4409", code)
	}
}

// The server completing an operation (a query, answered once) frees its
// id; queries run over the socket too.
func TestQueryOverWebSocket(t *testing.T) {
	e := start(t, nil)
	c := e.dial("graphql-transport-ws")
	c.ack()
	c.send(`{"id":"a","type":"subscribe","payload":{"query":"{ ok }"}}`)
	if m := c.expect("next", "a"); string(m.Payload) != `{"data":{"ok":true}}` {
		t.Fatalf("query result %s", m.Payload)
	}
	c.expect("complete", "a")
	c.send(subscribe("a", "dana"))
	e.live(1, person("dana"))
	e.publish(person("dana"), "hello")
	if got := text(t, c.expect("next", "a")); got != "hello" {
		t.Fatalf("got %q", got)
	}
}

// "error" ends an operation: nothing follows it, and the id is free.
func TestNoCompleteAfterError(t *testing.T) {
	e := start(t, nil)
	c := e.dial("graphql-transport-ws")
	c.ack()
	for _, q := range []string{
		`subscription { nope }`, // not in the schema
		`subscription { a: onNotificationReceived(userName: \"x\") { id } b: onNotificationReceived(userName: \"y\") { id } }`,
	} {
		c.send(`{"type":"subscribe","id":"bad","payload":{"query":"` + q + `"}}`)
		if m := c.expect("error", "bad"); !strings.Contains(string(m.Payload), "GRAPHQL_VALIDATION_FAILED") {
			t.Fatalf("error %s, want a validation error", m.Payload)
		}
		c.send(`{"type":"ping"}`)
		c.expect("pong", "")
	}
	// @skip on the root field (it might leave none): also a validation error.
	c.send(`{"type":"subscribe","id":"bad","payload":{"query":"subscription($s:Boolean!){ onNotificationReceived(userName: \"x\") @skip(if: $s) { id } }","variables":{"s":true}}}`)
	if m := c.expect("error", "bad"); !strings.Contains(string(m.Payload), "GRAPHQL_VALIDATION_FAILED") {
		t.Fatalf("error %s, want a validation error", m.Payload)
	}
	// A resolver's refusal is a result with errors, then complete.
	c.send(`{"type":"subscribe","id":"bad","payload":{"query":"subscription { onNotificationReceived(userName: \"\") { id } }"}}`)
	if m := c.expect("next", "bad"); !strings.Contains(string(m.Payload), "BAD_USER_INPUT") {
		t.Fatalf("next %s, want BAD_USER_INPUT", m.Payload)
	}
	c.expect("complete", "bad")
}

// The legacy subprotocol keeps its rules: connection_error, then 1002;
// start/data/stop; "ka" from connection_ack on.
func TestLegacy(t *testing.T) {
	e := start(t, func(c *transport.Config) { c.KeepAlive = 50 * time.Millisecond })
	for _, frames := range [][]string{{`{`}, {`{"type":"connection_init"}`, `{"type":"connection_init"}`}, {`{"type":"start","id":"1"}`}} {
		c := e.dial("graphql-ws")
		for _, f := range frames {
			c.send(f)
		}
		for m := c.next(); m.Type != "connection_error"; m = c.next() {
			if m.Type != "connection_ack" && m.Type != "ka" {
				t.Fatalf("%v: got %s, want connection_error", frames, m.Type)
			}
		}
		if code, _ := waitClose(c); code != 1002 {
			t.Fatalf("%v: closed with %d, want 1002", frames, code)
		}
	}
	c := e.dial("graphql-ws")
	c.send(`{"type":"connection_init"}`)
	c.expect("connection_ack", "")
	c.expect("ka", "")
	c.send(`{"id":"1","type":"start","payload":{"query":"` + notices + `","variables":{"u":"lee"}}}`)
	e.live(1, person("lee"))
	e.publish(person("lee"), "legacy")
	for {
		m := c.next()
		if m.Type == "ka" {
			continue
		}
		if m.Type != "data" || m.ID != "1" || text(t, m) != "legacy" {
			t.Fatalf("got %s %q %s", m.Type, m.ID, m.Payload)
		}
		break
	}
	c.send(`{"id":"1","type":"stop"}`)
	eventually(t, "subscription stopped", func() bool { return e.hub.Stats().Subscriptions == 0 })
}

// waitClose skips keep-alives until the close.
func waitClose(c *client) (int, string) {
	for {
		select {
		case m := <-c.msgs:
			if m.Type != "ka" && m.Type != "ping" {
				c.t.Fatalf("got %s while waiting for a close", m.Type)
			}
		case <-c.done:
			return c.code, c.reason
		case <-time.After(10 * time.Second):
			c.t.Fatal("not closed within 10s")
		}
	}
}

// At shutdown every socket closes with 1001 and no subscription is
// completed: graphql-ws clients resubscribe after they reconnect.
func TestShutdownClosesWithoutComplete(t *testing.T) {
	e := start(t, nil)
	c := e.dial("graphql-transport-ws")
	c.ack()
	c.send(subscribe("1", "dana"))
	l := e.dial("graphql-ws")
	l.send(`{"type":"connection_init"}`)
	l.expect("connection_ack", "")
	l.send(`{"id":"1","type":"start","payload":{"query":"` + notices + `","variables":{"u":"dana"}}}`)
	e.live(2, person("dana"))
	e.ts.CloseAll(transport.CloseGoingAway, "server shutting down; reconnect")
	if code, reason := c.closed(); code != 1001 || !strings.Contains(reason, "reconnect") {
		t.Fatalf("closed with %d %q, want 1001", code, reason)
	}
	if code, _ := waitClose(l); code != 1001 {
		t.Fatalf("legacy closed with %d, want 1001", code)
	}
	if !e.ts.Drain(5 * time.Second) {
		t.Fatal("connections left after CloseAll")
	}
	eventually(t, "subscriptions released", func() bool { return e.hub.Stats().Subscriptions == 0 })
	// Both counted as closed by the shutdown, though the clients answered
	// the close.
	if got, other := e.ts.Disconnects("shutdown"), e.ts.Disconnects("client_closed"); got != 2 || other != 0 {
		t.Fatalf("disconnects: %d shutdown, %d client_closed; want 2 and 0", got, other)
	}
}

// Keep-alive runs from the one schedule: "ping" on graphql-transport-ws, "ka" on
// graphql-ws, from connection_ack on. (MissingPongOk: cutting a silent
// peer is TestSilentPeer's; here a loaded machine could hold the test's
// pong past twice the 50 ms interval, and the peer would be cut.)
func TestKeepAlive(t *testing.T) {
	e := start(t, func(c *transport.Config) { c.KeepAlive = 50 * time.Millisecond; c.MissingPongOk = true })
	c := e.dial("graphql-transport-ws")
	c.ack()
	for range 3 {
		c.expect("ping", "")
		c.send(`{"type":"pong"}`)
	}
	l := e.dial("graphql-ws")
	l.send(`{"type":"connection_init"}`)
	l.expect("connection_ack", "")
	for range 3 {
		l.expect("ka", "")
	}
}

// A graphql-transport-ws peer that sends nothing for twice the ping
// interval is cut off, unless MissingPongOk.
func TestSilentPeer(t *testing.T) {
	for _, ok := range []bool{false, true} {
		e := start(t, func(c *transport.Config) { c.KeepAlive = 50 * time.Millisecond; c.MissingPongOk = ok })
		c := e.dial("graphql-transport-ws")
		c.ack()
		deadline := time.After(time.Second)
	wait:
		for {
			select {
			case m := <-c.msgs:
				if m.Type != "ping" {
					t.Fatalf("got %s, want ping", m.Type)
				}
			case <-c.done:
				if ok {
					t.Fatal("MissingPongOk: a silent peer was cut off")
				}
				break wait
			case <-deadline:
				if !ok {
					t.Fatal("a silent peer is still connected after 1s")
				}
				break wait
			}
		}
	}
}

// A token that expires closes its connection with 4403.
func TestExpiryClosesTheConnection(t *testing.T) {
	type expKey struct{}
	e := start(t, func(c *transport.Config) {
		c.Init = func(ctx context.Context, _ map[string]any) (context.Context, error) {
			return context.WithValue(ctx, expKey{}, time.Now().Add(100*time.Millisecond)), nil
		}
		c.Expiry = func(ctx context.Context) time.Time { t, _ := ctx.Value(expKey{}).(time.Time); return t }
	})
	for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
		c := e.dial(proto)
		c.send(`{"type":"connection_init"}`)
		c.expect("connection_ack", "")
		if code, reason := waitClose(c); code != 4403 || !strings.Contains(reason, "expired") {
			t.Fatalf("%s: closed with %d %q, want 4403 token expired", proto, code, reason)
		}
	}
}
