package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
)

// A graceful shutdown (SIGTERM, a deploy) closes every WebSocket with 1001
// "going away", on both subprotocols, and ends no subscription first: a
// `complete` tells a client its subscription is finished, so it would
// reconnect and not resubscribe — it would stay connected and receive
// nothing. Before the fix the hub ended the subscriptions while the close
// frames were still being sent, so most clients got `complete` first, and
// some sockets were cut without a close frame (1006).
func TestShutdownClosesEveryWebSocketWith1001(t *testing.T) {
	s := startStack(t)
	var clients []*gqlws.Client
	for i := range 6 {
		for _, proto := range []string{gqlws.TransportWS, gqlws.LegacyWS} {
			c := connect(t, s.sub, proto)
			subscribe(t, c, "1", "deploy")
			subscribe(t, c, "2", fmt.Sprint("deploy-", i))
			clients = append(clients, c)
		}
	}
	s.pub.WaitReceivers("deploy", len(clients))

	s.sub.Stop() // SIGTERM; waits for the process to exit
	for i, c := range clients {
		select {
		case <-c.Closed():
		case <-time.After(10 * time.Second):
			t.Fatalf("client %d (%s): still open after sub exited", i, c.Protocol)
		}
		// Msgs is closed once the connection has ended: everything the
		// server sent is in it.
		for m := range c.Msgs {
			if m.Type == "complete" || m.Type == "error" {
				t.Errorf("client %d (%s): got %s for subscription %q before the close; the client would not resubscribe",
					i, c.Protocol, m.Type, m.ID)
			}
		}
		if code, reason := c.CloseStatus(); code != 1001 {
			t.Errorf("client %d (%s): closed with %d %q, want 1001", i, c.Protocol, code, reason)
		}
	}
}

// SSE streams end at once on SIGTERM, without "complete": graphql-sse then
// takes the end for a broken connection and retries (to another instance),
// where "complete" would end its subscription for good. Before the fix they
// stayed open until SHUTDOWN_TIMEOUT and were cut then.
func TestShutdownEndsSSEStreamsWithoutComplete(t *testing.T) {
	s := startStack(t, "SHUTDOWN_TIMEOUT=60s")
	var streams []*sseStream
	for range 3 {
		streams = append(streams, openSSE(t, s.sub, "deploy-sse"))
	}
	s.pub.WaitReceivers("deploy-sse", len(streams))

	stopped := make(chan struct{})
	go func() { defer close(stopped); s.sub.Stop() }()
	for i, st := range streams {
		timeout := time.After(10 * time.Second) // SHUTDOWN_TIMEOUT is 60s
		for ended := false; !ended; {
			select {
			case ev, ok := <-st.events:
				if !ok {
					ended = true
				} else if ev.Event == "complete" {
					t.Fatalf("stream %d: complete on shutdown; graphql-sse would not retry", i)
				}
			case <-timeout:
				t.Fatalf("stream %d: still open 10s after SIGTERM", i)
			}
		}
	}
	<-stopped
}
