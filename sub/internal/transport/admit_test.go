package transport_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/sub/internal/transport"
)

// admissions counts what Admit let in and what was given back.
type admissions struct {
	admitted, released atomic.Int64
	refuse             atomic.Bool
}

func (a *admissions) admit(w http.ResponseWriter, r *http.Request) (context.Context, func(), bool) {
	if a.refuse.Load() {
		errkind.WriteHTTP(w, http.StatusServiceUnavailable, errkind.CodeUnavailable, "full")
		return nil, nil, false
	}
	a.admitted.Add(1)
	var once atomic.Bool
	return r.Context(), func() {
		if !once.CompareAndSwap(false, true) {
			panic("released twice")
		}
		a.released.Add(1)
	}, true
}

// Every admitted stream gives its admission back exactly once, whichever
// way it ends: a WebSocket closed by its client or refused at
// connection_init, a handshake gorilla refuses, an SSE request answered
// with an error or a short stream, an SSE stream its client drops. A
// refused request never reaches the transport.
func TestAdmissionIsGivenBackOnce(t *testing.T) {
	var a admissions
	e := start(t, func(c *transport.Config) {
		c.Admit = a.admit
		c.Init = func(ctx context.Context, p map[string]any) (context.Context, error) {
			if p["refuse"] != nil {
				return ctx, errkind.ErrRateLimited
			}
			return ctx, nil
		}
	})
	balanced := func(n int64) {
		t.Helper()
		eventually(t, "every admission given back", func() bool {
			return a.admitted.Load() == n && a.released.Load() == n
		})
	}

	c := e.dial("graphql-transport-ws")
	c.ack()
	c.send(subscribe("1", "admit"))
	e.live(1, person("admit"))
	_ = c.conn.Close()
	balanced(1)

	// connection_init refused with ErrRateLimited: close 4429.
	c = e.dial("graphql-transport-ws")
	c.send(`{"type":"connection_init","payload":{"refuse":true}}`)
	if code, _ := c.closed(); code != transport.CloseTooManyRequests {
		t.Fatalf("refused init closed with %d, want 4429", code)
	}
	balanced(2)

	// A handshake gorilla refuses (no Sec-WebSocket-Key).
	req, _ := http.NewRequest(http.MethodGet, e.url, nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("broken handshake: %d", resp.StatusCode)
	}
	balanced(3)

	sse := func(body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.url, bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp = sse(`not json`)
	resp.Body.Close()
	balanced(4)
	resp = sse(`{"query":"{ __typename }"}`) // a short stream: next, complete
	resp.Body.Close()
	balanced(5)
	resp = sse(`{"query":"subscription{onNotificationReceived(userName:\"admit-sse\"){id}}"}`)
	e.live(1, person("admit-sse"))
	if a.released.Load() != 5 {
		t.Fatal("a live SSE stream gave its admission back")
	}
	resp.Body.Close()
	balanced(6)

	// Refused: the transport never sees it.
	a.refuse.Store(true)
	resp = sse(`{"query":"{ __typename }"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("refused SSE: %d", resp.StatusCode)
	}
	balanced(6)
}

// MaxSubscriptions: one operation more than the bound gets an error with
// TOO_MANY_SUBSCRIPTIONS and is counted; the others go on, and a completed
// one makes room.
func TestMaxSubscriptions(t *testing.T) {
	e := start(t, func(c *transport.Config) { c.MaxSubscriptions = 2 })
	c := e.dial("graphql-transport-ws")
	c.ack()
	c.send(subscribe("1", "cap"))
	c.send(subscribe("2", "cap"))
	c.send(subscribe("3", "cap"))
	m := c.expect("error", "3")
	if !strings.Contains(string(m.Payload), errkind.CodeTooManySubscriptions) {
		t.Fatalf("error payload %s", m.Payload)
	}
	if n := e.ts.Stats().TooManySubscriptions; n != 1 {
		t.Fatalf("TooManySubscriptions = %d, want 1", n)
	}
	e.live(2, person("cap"))
	e.publish(person("cap"), "both")
	for range 2 {
		if got := text(t, c.next()); got != "both" {
			t.Fatalf("got %q", got)
		}
	}
	// Completing 1 makes room for 3, and only for 3.
	c.send(`{"id":"1","type":"complete"}`)
	c.send(subscribe("3", "cap"))
	c.send(subscribe("4", "cap"))
	c.expect("error", "4")
	e.live(2, person("cap"))
}
