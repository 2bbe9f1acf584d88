package transport_test

import (
	"slices"
	"testing"
	"time"

	"github.com/oshirase/oshirase/sub/internal/transport"
)

// A graceful drain closes the connections one at a time over the window,
// not all at once, each with 1001 and no complete: the close times of 12
// clients cover most of the window, and no instant holds more than a few.
func TestCloseAllSpreadSpreadsCloses(t *testing.T) {
	e := start(t, nil)
	const n = 12
	const window = 1200 * time.Millisecond
	var clients []*client
	for range n {
		c := e.dial("graphql-transport-ws")
		c.ack()
		clients = append(clients, c)
	}
	closedAt := make(chan time.Duration, n)
	t0 := time.Now()
	for _, c := range clients {
		go func() {
			<-c.done
			closedAt <- time.Since(t0)
		}()
	}
	e.ts.CloseAllSpread(transport.CloseGoingAway, "server shutting down; reconnect", window)
	returned := time.Since(t0)
	var times []time.Duration
	for range n {
		select {
		case d := <-closedAt:
			times = append(times, d)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d clients closed within 10s", len(times), n)
		}
	}
	for i, c := range clients {
		if code, reason := c.code, c.reason; code != 1001 {
			t.Errorf("client %d closed with %d %q, want 1001", i, code, reason)
		}
		for len(c.msgs) > 0 {
			if m := <-c.msgs; m.Type == "complete" {
				t.Errorf("client %d: complete before the close", i)
			}
		}
	}
	slices.Sort(times)
	span := times[n-1] - times[0]
	// The last close is due at window*(n-1)/n (1.1s): it cannot come
	// earlier. Timing slack only ever makes the span longer.
	if span < window/2 || returned < window*(n-1)/n {
		t.Fatalf("closes at %v (span %s), CloseAllSpread returned after %s; want them spread over about %s", times, span, returned, window)
	}
	// No more than a third of the clients within any tenth of the window.
	for i := range times {
		j := i
		for j < n && times[j]-times[i] <= window/10 {
			j++
		}
		if j-i > n/3 {
			t.Fatalf("%d closes within %s of %s: %v", j-i, window/10, times[i], times)
		}
	}
	if !e.ts.Drain(5 * time.Second) {
		t.Fatal("connections left after CloseAllSpread")
	}
}

// A window of 0 closes everything at once, as CloseAll does.
func TestCloseAllSpreadZeroWindow(t *testing.T) {
	e := start(t, nil)
	a, b := e.dial("graphql-transport-ws"), e.dial("graphql-ws")
	a.ack()
	b.send(`{"type":"connection_init"}`)
	b.expect("connection_ack", "")
	e.ts.CloseAllSpread(transport.CloseGoingAway, "bye", 0)
	if code, _ := a.closed(); code != 1001 {
		t.Fatalf("closed with %d, want 1001", code)
	}
	if code, _ := waitClose(b); code != 1001 {
		t.Fatalf("legacy closed with %d, want 1001", code)
	}
}
