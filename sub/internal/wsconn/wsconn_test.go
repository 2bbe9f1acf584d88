package wsconn_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/testserver"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"

	"github.com/oshirase/oshirase/sub/internal/wsconn"
)

// start serves gqlgen's test schema (Subscription.name, fed by
// SendNextSubscriptionMessage) over the adapter.
func start(t *testing.T, ws transport.Websocket) (*testserver.TestServer, string) {
	t.Helper()
	srv := testserver.New()
	im := wsconn.New(wsconn.Config{WriteTimeout: time.Second})
	srv.AddTransport(im.Transport(ws))
	hs := httptest.NewServer(im.Middleware(srv))
	t.Cleanup(hs.Close)
	return srv, "ws" + strings.TrimPrefix(hs.URL, "http")
}

type msg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type client struct {
	t      *testing.T
	conn   *websocket.Conn
	msgs   chan msg
	code   int
	reason string
	done   chan struct{}
}

func dial(t *testing.T, url, protocol string) *client {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{protocol}}
	conn, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, conn: conn, msgs: make(chan msg, 100), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					c.code, c.reason = ce.Code, ce.Text
				}
				return
			}
			var m msg
			if err := json.Unmarshal(data, &m); err != nil {
				t.Errorf("server sent invalid JSON %q", data)
			}
			c.msgs <- m
		}
	}()
	t.Cleanup(func() { _ = conn.Close() })
	return c
}

func (c *client) send(raw string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next message, or fails.
func (c *client) next() msg {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-c.done:
		select { // a message that came just before the close
		case m := <-c.msgs:
			return m
		default:
		}
		c.t.Fatalf("closed with %d %q while waiting for a message", c.code, c.reason)
	case <-time.After(5 * time.Second):
		c.t.Fatal("no message within 5s")
	}
	return msg{}
}

func (c *client) expect(typ, id string) msg {
	c.t.Helper()
	m := c.next()
	if m.Type != typ || m.ID != id {
		c.t.Fatalf("got %s %q %s, want %s %q", m.Type, m.ID, m.Payload, typ, id)
	}
	return m
}

// closed waits for the server's close and returns its code and reason,
// failing on any message that arrives first.
func (c *client) closed() (int, string) {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		c.t.Fatalf("got %s %q %s, want a close", m.Type, m.ID, m.Payload)
	case <-c.done:
		return c.code, c.reason
	case <-time.After(5 * time.Second):
		c.t.Fatal("not closed within 5s")
	}
	return 0, ""
}

func (c *client) ack() {
	c.t.Helper()
	c.send(`{"type":"connection_init"}`)
	c.expect("connection_ack", "")
}

const sub = `{"query":"subscription { name }"}`

func subscribe(id string) string {
	return `{"id":"` + id + `","type":"subscribe","payload":` + sub + `}`
}

func TestCloseCodes(t *testing.T) {
	_, url := start(t, transport.Websocket{InitTimeout: 200 * time.Millisecond})
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
		{"subscribe with bad variables", true, []string{`{"type":"subscribe","id":"1","payload":{"query":"{name}","variables":[]}}`}, 4400, "'variables'"},
		{"complete without id", true, []string{`{"type":"complete"}`}, 4400, "'id'"},
		{"subscribe before init", false, []string{subscribe("1")}, 4401, "Unauthorized"},
		{"no init", false, nil, 4408, "Connection initialisation timeout"},
		{"id in use", true, []string{subscribe("a"), subscribe("a")}, 4409, "Subscriber for a already exists"},
		{"second init", true, []string{`{"type":"connection_init"}`}, 4429, "Too many initialisation requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, url, "graphql-transport-ws")
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
}

func TestRefusedInit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ctx    func(context.Context) context.Context
		code   int
		reason string
	}{
		{"InitFunc chose 4403", func(ctx context.Context) context.Context {
			return transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, 4403), "token expired")
		}, 4403, "token expired"},
		{"InitFunc chose no code", func(ctx context.Context) context.Context { return ctx }, 4403, "Forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := start(t, transport.Websocket{InitFunc: func(ctx context.Context, _ transport.InitPayload) (context.Context, *transport.InitPayload, error) {
				return tc.ctx(ctx), nil, errors.New("no")
			}})
			c := dial(t, url, "graphql-transport-ws")
			c.send(`{"type":"connection_init","payload":{"Authorization":"Bearer x"}}`)
			if code, reason := c.closed(); code != tc.code || reason != tc.reason {
				t.Fatalf("closed with %d %q, want %d %q", code, reason, tc.code, tc.reason)
			}
		})
	}
}

func TestPingBeforeInit(t *testing.T) {
	_, url := start(t, transport.Websocket{})
	c := dial(t, url, "graphql-transport-ws")
	c.send(`{"type":"ping","payload":{"n":1}}`)
	if m := c.expect("pong", ""); string(m.Payload) != `{"n":1}` {
		t.Fatalf("pong payload %s", m.Payload)
	}
	c.send(`{"type":"pong"}`) // unsolicited pongs are allowed and ignored
	c.ack()
	c.send(`{"type":"ping"}`)
	c.expect("pong", "")
}

// A client may reuse an id once it has completed it; gqlgen's late
// "complete" for the old operation must not end the new one, and nothing
// for the old one may follow the client's complete.
func TestIDReuseAfterClientComplete(t *testing.T) {
	srv, url := start(t, transport.Websocket{})
	c := dial(t, url, "graphql-transport-ws")
	c.ack()
	c.send(subscribe("a"))
	srv.SendNextSubscriptionMessage()
	c.expect("next", "a")
	c.send(`{"type":"complete","id":"a"}`)
	c.send(`{"type":"complete","id":"never-started"}`) // ignored
	c.send(subscribe("a"))
	// The old operation's goroutine may still take a message or two from
	// the test schema's shared feed before it sees its end; those are
	// dropped, so feed until the new operation has one.
	fed := make(chan struct{})
	go func() {
		for {
			select {
			case <-fed:
				return
			default:
				srv.SendNextSubscriptionMessage()
			}
		}
	}()
	c.expect("next", "a")
	close(fed)
	c.send(`{"type":"ping"}`)
	for m := c.next(); m.Type != "pong"; m = c.next() {
		if m.Type != "next" || m.ID != "a" {
			t.Fatalf("got %s %q, want next for a or pong", m.Type, m.ID)
		}
	}
	c.send(subscribe("a")) // still live: now it is a duplicate
	for {
		select {
		case m := <-c.msgs:
			if m.Type != "next" || m.ID != "a" {
				t.Fatalf("got %s %q, want next for a or a close", m.Type, m.ID)
			}
			continue
		case <-c.done:
		}
		break
	}
	if c.code != 4409 {
		t.Fatalf("closed with %d, want 4409", c.code)
	}
}

// The server completing an operation frees its id.
func TestIDReuseAfterServerComplete(t *testing.T) {
	srv, url := start(t, transport.Websocket{})
	c := dial(t, url, "graphql-transport-ws")
	c.ack()
	c.send(subscribe("a"))
	srv.SendNextSubscriptionMessage()
	c.expect("next", "a")
	srv.SendCompleteSubscriptionMessage()
	c.expect("complete", "a")
	c.send(subscribe("a"))
	srv.SendNextSubscriptionMessage()
	c.expect("next", "a")
}

// "error" ends an operation: no "complete" may follow it.
func TestNoCompleteAfterError(t *testing.T) {
	_, url := start(t, transport.Websocket{})
	c := dial(t, url, "graphql-transport-ws")
	c.ack()
	c.send(`{"type":"subscribe","id":"bad","payload":{"query":"subscription { nope }"}}`)
	c.expect("error", "bad")
	c.send(`{"type":"ping"}`)
	c.expect("pong", "")
	c.send(`{"type":"subscribe","id":"bad","payload":` + sub + `}`) // the id is free again
	c.send(`{"type":"ping"}`)
	c.expect("pong", "")
}

// The legacy subprotocol keeps gqlgen's behaviour: connection_error, 1002.
func TestLegacyUnchanged(t *testing.T) {
	_, url := start(t, transport.Websocket{})
	c := dial(t, url, "graphql-ws")
	c.send(`{`)
	c.expect("connection_error", "")
	if code, _ := c.closed(); code != 1002 {
		t.Fatalf("closed with %d, want 1002", code)
	}
}

// gqlgen closing a live connection on its own (its context ended) sends
// 1001, which graphql-ws clients retry with backoff, never 1000.
func TestServerEndsLiveConnection(t *testing.T) {
	cancel := make(chan struct{})
	_, url := start(t, transport.Websocket{InitFunc: func(ctx context.Context, _ transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		ctx, stop := context.WithCancel(ctx)
		go func() { <-cancel; stop() }()
		return ctx, nil, nil
	}})
	c := dial(t, url, "graphql-transport-ws")
	c.ack()
	close(cancel)
	if code, _ := c.closed(); code != 1001 {
		t.Fatalf("closed with %d, want 1001", code)
	}
}

// The adapter sends gqlgen's keep-alive from a timer: "ping" on
// graphql-transport-ws, "ka" on graphql-ws, from connection_ack on.
func TestKeepAlive(t *testing.T) {
	_, url := start(t, transport.Websocket{KeepAlivePingInterval: 50 * time.Millisecond, PingPongInterval: 50 * time.Millisecond})
	c := dial(t, url, "graphql-transport-ws")
	c.ack()
	for range 3 {
		c.expect("ping", "")
		c.send(`{"type":"pong"}`)
	}
	l := dial(t, url, "graphql-ws")
	l.send(`{"type":"connection_init"}`)
	l.expect("connection_ack", "")
	for range 3 {
		l.expect("ka", "")
	}
}

// A graphql-transport-ws peer that keeps answering stays connected; once
// it sends nothing for twice the ping interval it is cut off — not sooner
// — and dropped without a close frame (1006 at the client), as graphql-ws's
// own server terminates a peer that misses its pong. So is a peer silent
// from its connection_ack on.
func TestSilentPeerCutOff(t *testing.T) {
	const interval = 300 * time.Millisecond
	_, url := start(t, transport.Websocket{PingPongInterval: interval})
	mute := dial(t, url, "graphql-transport-ws")
	muteSince := time.Now() // before connection_init: no later than the server's ack
	mute.ack()
	c := dial(t, url, "graphql-transport-ws")
	start := time.Now()
	c.ack()
	// Four intervals of pongs: longer than twice the interval after the ack.
	for range 4 {
		select {
		case m := <-c.msgs:
			if m.Type != "ping" {
				t.Fatalf("got %s, want ping", m.Type)
			}
			c.send(`{"type":"pong"}`)
		case <-c.done:
			t.Fatalf("a peer answering every ping was cut off after %s with %d %q", time.Since(start).Round(time.Millisecond), c.code, c.reason)
		case <-time.After(5 * time.Second):
			t.Fatal("no ping within 5s")
		}
	}
	awaitCutOff(t, mute, muteSince, 2*interval)
	awaitCutOff(t, c, time.Now(), 2*interval)
}

// awaitCutOff waits for the server to drop c, which went silent at since,
// and checks it waited at least silence and dropped it without a close
// frame.
func awaitCutOff(t *testing.T, c *client, since time.Time, silence time.Duration) {
	t.Helper()
	deadline := time.After(time.Until(since.Add(silence + 5*time.Second)))
	for {
		select {
		case m := <-c.msgs:
			if m.Type != "ping" {
				t.Fatalf("got %s, want ping", m.Type)
			}
			continue
		case <-c.done:
		case <-deadline:
			t.Fatalf("a peer silent for %s is still connected; want it cut off after %s", time.Since(since).Round(time.Millisecond), silence)
		}
		break
	}
	if d := time.Since(since); d < silence {
		t.Fatalf("cut off after %s of silence, before twice the ping interval (%s)", d.Round(time.Millisecond), silence)
	}
	if c.code != websocket.CloseAbnormalClosure {
		t.Fatalf("cut off with close %d %q; want the connection dropped without a close frame (1006)", c.code, c.reason)
	}
}

// Code deeper in a request closes its socket with wsconn.Close.
func TestCloseFromContext(t *testing.T) {
	closed := make(chan error, 1)
	_, url := start(t, transport.Websocket{InitFunc: func(ctx context.Context, _ transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		time.AfterFunc(50*time.Millisecond, func() { closed <- wsconn.Close(ctx, 1013, "slow") })
		return ctx, nil, nil
	}})
	c := dial(t, url, "graphql-transport-ws")
	c.ack()
	if code, reason := c.closed(); code != 1013 || reason != "slow" {
		t.Fatalf("closed with %d %q, want 1013 slow", code, reason)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := wsconn.Close(context.Background(), 1000, ""); !errors.Is(err, wsconn.ErrNoConn) {
		t.Fatalf("Close without a socket: %v", err)
	}
}
