package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/sub/graph"
	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/sub/internal/transport"
	"github.com/oshirase/oshirase/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is sub's stream path with real parts: a redis-server of the test's
// own, the Redis broker, the hub, sub's schema and this transport, served
// by an httptest server.
type env struct {
	t   *testing.T
	rdb *redis.Client
	b   *bus.Redis // history on: historySize notices per channel
	hub *hub.Hub
	n   *graph.Notifications
	ts  *transport.Server
	url string // http://…/graphql
}

// audience lets any userName read its personal channel and the company's.
type audience struct{}

func (audience) Channels(_ context.Context, user string) ([]wire.Channel, error) {
	if err := wire.ValidateName("userName", user, 0); err != nil {
		return nil, err
	}
	p, err := wire.PersonChannel("acme", user)
	if err != nil {
		return nil, err
	}
	return []wire.Channel{p, company()}, nil
}

func company() wire.Channel {
	ch, _ := wire.NewChannel("acme", wire.ScopeCompany, "")
	return ch
}

func person(user string) wire.Channel {
	ch, _ := wire.PersonChannel("acme", user)
	return ch
}

type streams struct{ n *graph.Notifications }

func (s streams) Open(ctx context.Context, opCtx *graphql.OperationContext, f graphql.CollectedField) ([]wire.Channel, transport.Shape, *string, error) {
	chs, shape, after, err := s.n.Open(ctx, opCtx, f)
	if err != nil {
		return nil, nil, nil, err
	}
	return chs, shape, after, nil
}

func start(t *testing.T, configure func(*transport.Config)) *env {
	t.Helper()
	e := serve(t, configure)
	e.t = t
	return e
}

// serve is start for a fuzz target (its env has no *testing.T).
func serve(t testing.TB, configure func(*transport.Config)) *env {
	t.Helper()
	srv := redistest.Start(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rdb := srv.Client()
	var h *hub.Hub
	b, err := bus.NewRedis(bus.Config{Client: rdb, Handler: func(ch wire.Channel, p []byte) { h.Dispatch(ch, p) }, Logger: log,
		HistorySize: historySize, HistoryTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h = hub.New(hub.Config{Bus: b, Logger: log})
	resolver := &graph.Resolver{Audience: audience{}}
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: resolver})
	n := graph.NewNotifications(schema, resolver, gqlserve.PresentError(log), gqlserve.Recover(log))
	cfg := transport.Config{
		Schema:       schema,
		Exec:         gqlserve.NewExecutor(schema, nil, true, log),
		Streams:      streams{n},
		Hub:          h,
		History:      b,
		CursorHole:   n.CursorHole(),
		WriteTimeout: 2 * time.Second,
		Logger:       log,
	}
	if configure != nil {
		configure(&cfg)
	}
	ts := transport.New(cfg)
	hs := httptest.NewServer(ts.Handler(gqlserve.NewGraphQL(schema, nil, true, log)))
	t.Cleanup(func() {
		hs.Close()
		ts.CloseAll(transport.CloseGoingAway, "test over")
		ts.Drain(5 * time.Second)
		ts.Close()
		h.Close()
		_ = b.Close()
		_ = rdb.Close()
	})
	return &env{rdb: rdb, b: b, hub: h, n: n, ts: ts, url: hs.URL + "/graphql"}
}

// publish sends a notice through Redis, as pub does.
func (e *env) publish(ch wire.Channel, text string) {
	e.t.Helper()
	m, err := wire.NewMessage(text, wire.ScopePerson, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	p, _ := m.Encode()
	if err := e.rdb.Publish(context.Background(), string(ch), p).Err(); err != nil {
		e.t.Fatal(err)
	}
}

// historySize is how many notices each channel's history keeps in tests.
const historySize = 20

// record publishes a notice of scope through the bus, as pub does: it is
// also appended to its channel's history.
func (e *env) record(ch wire.Channel, scope wire.Scope, text string) {
	e.t.Helper()
	m, err := wire.NewMessage(text, scope, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	p, _ := m.Encode()
	if _, err := e.b.Publish(context.Background(), ch, p); err != nil {
		e.t.Fatal(err)
	}
}

// live waits until n subscriptions exist and every channel is subscribed
// in Redis: a notice published then reaches all of them.
func (e *env) live(n int64, chs ...wire.Channel) {
	e.t.Helper()
	eventually(e.t, "subscriptions live", func() bool {
		if e.hub.Stats().Subscriptions != n {
			return false
		}
		for _, ch := range chs {
			m, err := e.rdb.PubSubNumSub(context.Background(), string(ch)).Result()
			if err != nil || m[string(ch)] < 1 {
				return false
			}
		}
		return true
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type msg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// client is a raw WebSocket client that records what the server sends.
type client struct {
	t      *testing.T
	conn   *websocket.Conn
	msgs   chan msg
	code   int
	reason string
	done   chan struct{}
}

func (e *env) dial(protocol string) *client {
	e.t.Helper()
	d := websocket.Dialer{Subprotocols: []string{protocol}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(e.url, "http"), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &client{t: e.t, conn: conn, msgs: make(chan msg, 10000), done: make(chan struct{})}
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
				e.t.Errorf("server sent invalid JSON %q", data)
			}
			c.msgs <- m
		}
	}()
	e.t.Cleanup(func() {
		_ = conn.Close()
		<-c.done
	})
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
	case <-time.After(10 * time.Second):
		c.t.Fatal("no message within 10s")
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
	case <-time.After(10 * time.Second):
		c.t.Fatal("not closed within 10s")
	}
	return 0, ""
}

func (c *client) ack() {
	c.t.Helper()
	c.send(`{"type":"connection_init"}`)
	c.expect("connection_ack", "")
}

const notices = `subscription($u:String!){onNotificationReceived(userName:$u){id text}}`

func subscribe(id, user string) string {
	return `{"id":"` + id + `","type":"subscribe","payload":{"query":"` + notices + `","variables":{"u":"` + user + `"}}}`
}

// text is the notice text of a next/data message.
func text(t *testing.T, m msg) string {
	t.Helper()
	var p struct {
		Data struct {
			N struct{ Text string } `json:"onNotificationReceived"`
		} `json:"data"`
		Errors json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
		t.Fatalf("%s payload %s: %v", m.Type, m.Payload, err)
	}
	return p.Data.N.Text
}
