package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// sseEvent is one server-sent event, or a comment (Event "", Comment set).
type sseEvent struct {
	Event, Data, Comment string
}

type sseStream struct {
	resp   *http.Response
	cancel context.CancelFunc
	events chan sseEvent
}

// openSSE subscribes to user's notices the way graphql-sse does in its
// "distinct connections" mode: one POST per subscription, answered with
// an event stream.
func openSSE(t *testing.T, s *harness.Service, user string, header ...string) *sseStream {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"query":     `subscription($u:String!){onNotificationReceived(userName:$u){id text timestamp}}`,
		"variables": map[string]any{"u": user},
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st := &sseStream{resp: resp, cancel: cancel, events: make(chan sseEvent, 1000)}
	t.Cleanup(st.Close)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		return st
	}
	go func() {
		defer close(st.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					st.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				st.events <- sseEvent{Comment: strings.TrimSpace(line[1:])}
			case strings.HasPrefix(line, "event:"):
				ev.Event = strings.TrimSpace(line[6:])
			case strings.HasPrefix(line, "data:"):
				ev.Data += strings.TrimSpace(line[5:])
			}
		}
	}()
	return st
}

// Close is what a browser does when the tab goes: drop the connection.
func (st *sseStream) Close() {
	st.cancel()
	st.resp.Body.Close()
}

// nextNotice returns the text of the next notice that is not a probe,
// skipping comments.
func (st *sseStream) nextNotice(t *testing.T, timeout time.Duration) (string, bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-st.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.Event == "" {
				continue
			}
			if ev.Event != "next" {
				t.Fatalf("got event %q %s, want next", ev.Event, ev.Data)
			}
			var p struct {
				Data struct {
					N gqlws.Notification `json:"onNotificationReceived"`
				} `json:"data"`
				Errors json.RawMessage `json:"errors"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &p); err != nil || len(p.Errors) > 0 {
				t.Fatalf("next event %s: %v", ev.Data, err)
			}
			if strings.HasPrefix(p.Data.N.Text, "probe:") {
				continue
			}
			return p.Data.N.Text, true
		case <-deadline:
			return "", false
		}
	}
}

// A notice reaches an SSE subscriber as a "next" event, idle streams get
// keep-alive comments, and when the client goes, so does its
// subscription.
func TestSSEDelivers(t *testing.T) {
	s := startStack(t, "KEEPALIVE_INTERVAL=200ms")
	st := openSSE(t, s.sub, "erin")
	if st.resp.StatusCode != 200 || st.resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", st.resp.StatusCode, st.resp.Header.Get("Content-Type"))
	}
	s.pub.WaitReceivers("erin", 1)
	if got := send(t, s.pub, "erin", "over SSE"); got != 1 {
		t.Fatalf("receivedUsers = %d, want 1", got)
	}
	if text, ok := st.nextNotice(t, 10*time.Second); !ok || text != "over SSE" {
		t.Fatalf("got %q, %v; want the notice", text, ok)
	}

	// Idle, the stream stays open and carries ": ping" comments, again and
	// again: three within 5s at KEEPALIVE_INTERVAL=200ms.
	deadline := time.After(5 * time.Second)
	for pings := 0; pings < 3; {
		select {
		case ev, open := <-st.events:
			switch {
			case !open:
				t.Fatalf("the idle stream ended after %d keep-alive comments; want it kept open with pings", pings)
			case ev.Comment == "ping":
				pings++
			case ev.Event != "" || ev.Comment != "":
				t.Fatalf("unexpected %+v while idle", ev)
			}
		case <-deadline:
			t.Fatalf("%d keep-alive comments within 5s of an idle stream; want 3 at KEEPALIVE_INTERVAL=200ms", pings)
		}
	}

	st.Close()
	eventually(t, 10*time.Second, "the subscription released", func() bool {
		return metric(t, s.sub, "oshirase_sub_subscriptions") == 0
	})
	s.pub.WaitReceivers("erin", 0)
}

// SSE and WebSocket subscribers of one user each get one copy; another
// user's stream stays silent.
func TestSSEAlongsideWebSocket(t *testing.T) {
	s := startStack(t)
	tab1 := openSSE(t, s.sub, "frank")
	tab2 := openSSE(t, s.sub, "frank")
	ws := connect(t, s.sub, gqlws.TransportWS)
	subscribe(t, ws, "1", "frank")
	other := openSSE(t, s.sub, "grace")
	s.pub.WaitReceivers("frank", 3)
	s.pub.WaitReceivers("grace", 1)

	if got := send(t, s.pub, "frank", "everywhere"); got != 3 {
		t.Fatalf("receivedUsers = %d, want 3", got)
	}
	for _, st := range []*sseStream{tab1, tab2} {
		if text, ok := st.nextNotice(t, 10*time.Second); !ok || text != "everywhere" {
			t.Fatalf("got %q, %v", text, ok)
		}
	}
	expectNotice(t, ws, "everywhere")
	send(t, s.pub, "grace", "only grace")
	if text, ok := other.nextNotice(t, 10*time.Second); !ok || text != "only grace" {
		t.Fatalf("grace got %q, %v; want only her own notice", text, ok)
	}
	for _, st := range []*sseStream{tab1, tab2} {
		if text, ok := st.nextNotice(t, 300*time.Millisecond); ok {
			t.Fatalf("second copy or someone else's notice: %q", text)
		}
	}
}

// The limits of /graphql apply to SSE: the origin allowlist and the
// request size.
func TestSSELimits(t *testing.T) {
	s := startStack(t, "ALLOWED_ORIGINS=http://app.test", "READ_LIMIT=1KiB")
	if st := openSSE(t, s.sub, "heidi", "Origin", "http://evil.test"); st.resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: status %d, want 403", st.resp.StatusCode)
	}
	st := openSSE(t, s.sub, "heidi", "Origin", "http://app.test")
	if st.resp.StatusCode != 200 || st.resp.Header.Get("Access-Control-Allow-Origin") != "http://app.test" {
		t.Fatalf("allowed origin: status %d, CORS %q", st.resp.StatusCode, st.resp.Header.Get("Access-Control-Allow-Origin"))
	}
	s.pub.WaitReceivers("heidi", 1)

	// A request over READ_LIMIT is refused as the client's fault (a 4xx,
	// 413 where it says why), with a GraphQL error code in the body, never
	// streamed, never answered 200 or as a server fault, and without the
	// request echoed back.
	big := openSSE(t, s.sub, strings.Repeat("x", 4<<10))
	body, _ := io.ReadAll(io.LimitReader(big.resp.Body, 64<<10))
	var answer harness.GraphQLResponse
	_ = json.Unmarshal(body, &answer)
	if status := big.resp.StatusCode; status/100 != 4 || big.resp.Header.Get("Content-Type") == "text/event-stream" ||
		len(answer.Errors) == 0 || answer.Errors[0].Extensions["code"] == nil || bytes.Contains(body, []byte("xxxxxxxx")) {
		t.Fatalf("a request over READ_LIMIT: status %d, Content-Type %q, body %.300s; want a 4xx with a GraphQL error code, not echoing the request",
			status, big.resp.Header.Get("Content-Type"), body)
	}
}

// SSE takes the same credentials as WebSocket and POST: none gets 401 and
// no stream; a user's token streams that user's notices; subscribing as
// another user is refused with FORBIDDEN and makes no subscription.
func TestSSEAuth(t *testing.T) {
	s := jwtStack(t)
	if st := openSSE(t, s.sub, "bob"); st.resp.StatusCode != http.StatusUnauthorized || st.resp.Header.Get("Content-Type") == "text/event-stream" {
		t.Fatalf("no token: status %d, Content-Type %q; want 401 and no stream", st.resp.StatusCode, st.resp.Header.Get("Content-Type"))
	}
	bob := openSSE(t, s.sub, "bob", "Authorization", "Bearer "+userToken(t, "bob", "acme", ""))
	if bob.resp.StatusCode != http.StatusOK {
		t.Fatalf("bob's token: status %d", bob.resp.StatusCode)
	}
	waitReceiversAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob"}, 1)
	if n, err := publishAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob", "text": "for bob over SSE"}); err != nil || n != 1 {
		t.Fatalf("publish to bob: %d, %v", n, err)
	}
	if text, ok := bob.nextNotice(t, 10*time.Second); !ok || text != "for bob over SSE" {
		t.Fatalf("bob got %q, %v", text, ok)
	}

	spy := openSSE(t, s.sub, "alice", "Authorization", "Bearer "+userToken(t, "bob", "acme", ""))
	var events []sseEvent
	for ended, deadline := false, time.After(10*time.Second); !ended; {
		select {
		case ev, open := <-spy.events:
			ended = !open
			if open && ev.Event != "" {
				events = append(events, ev)
			}
		case <-deadline:
			t.Fatalf("bob's token subscribing as alice: the stream is still open after 10s, with %+v", events)
		}
	}
	if len(events) == 0 || events[0].Event != "next" || !strings.Contains(events[0].Data, "FORBIDDEN") || strings.Contains(events[0].Data, `"text"`) {
		t.Fatalf("bob's token subscribing as alice: %+v; want a FORBIDDEN error and the stream ended", events)
	}
	if n, err := publishAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "alice", "text": "x"}); err != nil || n != 0 {
		t.Fatalf("alice has %d receivers (%v) after a refused SSE subscription", n, err)
	}
}
