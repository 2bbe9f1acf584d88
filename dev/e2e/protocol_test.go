package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// dialRaw opens a WebSocket and sends nothing.
func dialRaw(t *testing.T, s *harness.Service, protocol string) *gqlws.Client {
	t.Helper()
	c, _, err := gqlws.Dial(s.WSURL(), protocol, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", protocol, err)
	}
	t.Cleanup(c.Close)
	return c
}

func sendRaw(t *testing.T, c *gqlws.Client, frames ...string) {
	t.Helper()
	for _, f := range frames {
		if err := c.SendRaw(f); err != nil {
			t.Fatal(err)
		}
	}
}

// expectClose waits for the server's close frame; any message before it
// (keep-alives aside) fails the test.
func expectClose(t *testing.T, c *gqlws.Client, code int, reason string) {
	t.Helper()
	if m, err := c.Next(10 * time.Second); err == nil {
		t.Fatalf("got %s %q %s, want close %d", m.Type, m.ID, m.Payload, code)
	}
	got, text := c.CloseStatus()
	if got != code || !strings.Contains(text, reason) {
		t.Fatalf("closed with %d %q, want %d %q", got, text, code, reason)
	}
}

func expectMsg(t *testing.T, c *gqlws.Client, typ, id string) gqlws.Msg {
	t.Helper()
	m, err := c.Next(10 * time.Second)
	if err != nil {
		t.Fatalf("waiting for %s %q: %v", typ, id, err)
	}
	if m.Type != typ || m.ID != id {
		t.Fatalf("got %s %q %s, want %s %q", m.Type, m.ID, m.Payload, typ, id)
	}
	return m
}

// subscribeRaw is a graphql-transport-ws subscribe message for user's
// notices under id.
func subscribeRaw(id, user string) string {
	b, _ := json.Marshal(gqlws.Msg{ID: id, Type: "subscribe", Payload: mustJSON(map[string]any{
		"query":     `subscription($u:String!){onNotificationReceived(userName:$u){id text}}`,
		"variables": map[string]any{"u": user},
	})})
	return string(b)
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// Every close code of graphql-transport-ws (graphql-ws PROTOCOL.md), from
// a raw client: a client breaking the protocol gets the specified code,
// never gqlgen's 1002, or a 1000 after which graphql-ws clients reconnect
// at once.
func TestTransportWSCloseCodes(t *testing.T) {
	s := startStack(t, "INIT_TIMEOUT=300ms")
	for _, tc := range []struct {
		name   string
		init   bool
		frames []string
		code   int
		reason string
	}{
		{"invalid JSON", false, []string{`{"type":`}, 4400, "JSON object"},
		{"missing type", true, []string{`{"id":"1"}`}, 4400, "missing the 'type'"},
		{"unknown type", true, []string{`{"type":"start","id":"1","payload":{"query":"{ok}"}}`}, 4400, `"start"`},
		{"type only the server sends", true, []string{`{"type":"next","id":"1","payload":{}}`}, 4400, "Unexpected message of type next"},
		{"connection_init payload not an object", false, []string{`{"type":"connection_init","payload":"token"}`}, 4400, "'payload'"},
		{"subscribe without query", true, []string{`{"type":"subscribe","id":"1","payload":{"variables":{}}}`}, 4400, "'query'"},
		{"subscribe without id", true, []string{`{"type":"subscribe","payload":{"query":"{ok}"}}`}, 4400, "'id'"},
		{"subscribe before connection_ack", false, []string{subscribeRaw("1", "bob")}, 4401, "Unauthorized"},
		{"no connection_init in time", false, nil, 4408, "Connection initialisation timeout"},
		{"subscription id in use", true, []string{subscribeRaw("a", "bob"), subscribeRaw("a", "carol")}, 4409, "Subscriber for a already exists"},
		{"second connection_init", true, []string{`{"type":"connection_init"}`}, 4429, "Too many initialisation requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, s.sub, gqlws.TransportWS)
			if tc.init {
				sendRaw(t, c, `{"type":"connection_init"}`)
				expectMsg(t, c, "connection_ack", "")
			}
			start := time.Now()
			sendRaw(t, c, tc.frames...)
			expectClose(t, c, tc.code, tc.reason)
			if tc.code == 4408 && time.Since(start) < 250*time.Millisecond {
				t.Fatalf("closed after %s, before INIT_TIMEOUT", time.Since(start))
			}
		})
	}
	if t.Failed() {
		return
	}
	eventually(t, 10*time.Second, "every connection released", func() bool {
		return metric(t, s.sub, "oshirase_sub_connections") == 0 && metric(t, s.sub, "oshirase_sub_subscriptions") == 0
	})
}

// A refused connection_init closes with 4403, which graphql-ws clients
// may retry (a new token may be allowed), not 1000.
func TestTransportWSForbidden(t *testing.T) {
	s := startStack(t, "AUTH_MODE=jwt", "JWT_SECRET=0123456789abcdef0123456789abcdef", "ALLOWED_ORIGINS=http://app.test")
	c := dialRaw(t, s.sub, gqlws.TransportWS)
	sendRaw(t, c, `{"type":"connection_init","payload":{"Authorization":"Bearer not-a-token"}}`)
	expectClose(t, c, 4403, "")
}

// After a normal complete the connection stays open, the id is free
// again, nothing more arrives for the completed subscription, and a later
// violation still gets its own code.
func TestTransportWSAfterComplete(t *testing.T) {
	s := startStack(t)
	c := connect(t, s.sub, gqlws.TransportWS)
	subscribe(t, c, "a", "dana")
	s.pub.WaitReceivers("dana", 1)
	send(t, s.pub, "dana", "first")
	expectNotice(t, c, "first")

	if err := c.Unsubscribe("a"); err != nil {
		t.Fatal(err)
	}
	s.pub.WaitReceivers("dana", 0)
	// Reusing the id at once is allowed; gqlgen's late "complete" for the
	// old subscription must not end the new one.
	subscribe(t, c, "a", "dana")
	s.pub.WaitReceivers("dana", 1)
	send(t, s.pub, "dana", "second")
	n, id, err := c.NextNotification(10 * time.Second)
	if err != nil || n.Text != "second" || id != "a" {
		t.Fatalf("got %+v on %q, %v; want second on a", n, id, err)
	}
	if code, _ := c.CloseStatus(); code != 0 {
		t.Fatalf("closed with %d after a normal complete", code)
	}

	sendRaw(t, c, subscribeRaw("a", "dana"))
	expectClose(t, c, 4409, "Subscriber for a already exists")
}

// An invalid subscription gets "error" and nothing after it: the protocol
// has no "complete" after an "error".
func TestTransportWSNoCompleteAfterError(t *testing.T) {
	s := startStack(t)
	c := connect(t, s.sub, gqlws.TransportWS)
	sendRaw(t, c, `{"id":"x","type":"subscribe","payload":{"query":"subscription { onNotificationReceived { id } }"}}`)
	expectMsg(t, c, "error", "x")
	sendRaw(t, c, `{"type":"ping","payload":{"after":"error"}}`)
	// Next skips pings and pongs, so read the raw stream.
	select {
	case m := <-c.Msgs:
		if m.Type != "pong" {
			t.Fatalf("got %s %q after the error, want pong", m.Type, m.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pong")
	}
}

// A ping before connection_init is answered (the protocol allows pings at
// any time), and the connection can then start as usual.
func TestTransportWSPingBeforeInit(t *testing.T) {
	s := startStack(t)
	c := dialRaw(t, s.sub, gqlws.TransportWS)
	sendRaw(t, c, `{"type":"ping"}`)
	select {
	case m := <-c.Msgs:
		if m.Type != "pong" {
			t.Fatalf("got %s, want pong", m.Type)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pong")
	}
	sendRaw(t, c, `{"type":"connection_init"}`)
	expectMsg(t, c, "connection_ack", "")
}

// The legacy subprotocol keeps its own rules: connection_error, then 1002.
func TestLegacyWSKeepsItsRules(t *testing.T) {
	s := startStack(t)
	for _, tc := range []struct {
		name   string
		frames []string
	}{
		{"invalid JSON", []string{`{"type":`}},
		{"second connection_init", []string{`{"type":"connection_init"}`, `{"type":"connection_init"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, s.sub, gqlws.LegacyWS)
			sendRaw(t, c, tc.frames...)
			for {
				m, err := c.Next(10 * time.Second)
				if err != nil {
					t.Fatalf("closed before connection_error: %v", err)
				}
				if m.Type == "connection_error" {
					break
				}
				if m.Type != "connection_ack" {
					t.Fatalf("got %s, want connection_error", m.Type)
				}
			}
			expectClose(t, c, 1002, "")
		})
	}
}
