package transport_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/sub/internal/transport"
)

type event struct {
	id, name, data, comment string
	isComment               bool
}

// readEvent reads one event or comment; io.EOF when the stream ends.
func readEvent(t *testing.T, r *bufio.Reader) (event, error) {
	t.Helper()
	var ev event
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev != (event{}) {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
			return event{comment: strings.TrimSpace(line[1:]), isComment: true}, nil
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data += line[6:]
		}
	}
}

// nextEvent skips comments.
func nextEvent(t *testing.T, r *bufio.Reader) event {
	t.Helper()
	for {
		ev, err := readEvent(t, r)
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if !ev.isComment {
			return ev
		}
	}
}

// A notice reaches an SSE stream as a "next" event; an idle stream gets
// keep-alive comments; a client that goes releases its subscription.
func TestSSEStream(t *testing.T) {
	e := start(t, func(c *transport.Config) { c.KeepAlive = 50 * time.Millisecond })
	conn, r := e.openSSE("erin", "")
	e.live(1, person("erin"))
	e.publish(person("erin"), "over SSE")
	if ev := nextEvent(t, r); ev.name != "next" || !strings.Contains(ev.data, `"text":"over SSE"`) {
		t.Fatalf("got %+v", ev)
	}
	for ev, err := readEvent(t, r); ev.comment != "ping"; ev, err = readEvent(t, r) {
		if err != nil || ev.name != "" {
			t.Fatalf("got %+v, %v while idle", ev, err)
		}
	}
	conn.Close()
	eventually(t, "the subscription released", func() bool { return e.hub.Stats().Subscriptions == 0 && e.ts.Stats().Open == 0 })
}

func post(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Requests that are not GraphQL get an HTTP error with a code and no echo
// of what was sent; invalid GraphQL and refused subscriptions get a short
// stream: the errors in a "next" event, then "complete".
func TestSSEBadRequests(t *testing.T) {
	e := start(t, func(c *transport.Config) { c.ReadLimit = 1 << 10 })
	for _, tc := range []struct {
		name, body string
		status     int
		want       []string
	}{
		{"over READ_LIMIT", `{"query":"{ok}","variables":{"pad":"` + strings.Repeat("x", 2<<10) + `"}}`, 413, []string{"REQUEST_TOO_LARGE"}},
		{"not JSON", `{{{secret`, 400, []string{"BAD_REQUEST"}},
		{"two root fields", `{"query":"subscription { a: onNotificationReceived(userName: \"x\") { id } b: onNotificationReceived(userName: \"y\") { id } }"}`, 200,
			[]string{"event: next\ndata: ", "GRAPHQL_VALIDATION_FAILED", "event: complete"}},
		{"malformed", `{"query":"subscription { onNotificationReceived("}`, 200, []string{"GRAPHQL_PARSE_FAILED", "event: complete"}},
		{"refused", `{"query":"subscription { onNotificationReceived(userName: \"\") { id } }"}`, 200, []string{"BAD_USER_INPUT", "event: complete"}},
		{"query", `{"query":"{ ok }"}`, 200, []string{"event: next\ndata: {\"data\":{\"ok\":true}}\n\nevent: complete\n\n"}},
	} {
		resp, body := post(t, e.url, tc.body)
		if resp.StatusCode != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, resp.StatusCode, tc.status, body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Fatalf("%s: body %q does not contain %q", tc.name, body, w)
			}
		}
		if strings.Contains(body, "secret") || strings.Contains(body, "xxxx") {
			t.Fatalf("%s: the request is echoed back: %s", tc.name, body)
		}
	}
	if got := e.hub.Stats().Subscriptions; got != 0 {
		t.Fatalf("%d subscriptions after bad requests", got)
	}
}

// A stream too slow for its queue gets a final event saying why, and no
// "complete": its client reconnects and catches up.
func TestSSESlowConsumer(t *testing.T) {
	e := start(t, func(c *transport.Config) { c.QueueSize = 1 })
	_, r := e.openSSE("slow", "")
	e.live(1, company())
	p := notice(t, "burst")
	for range 2000 {
		e.hub.Deliver(company(), p)
	}
	var last event
	for {
		ev, err := readEvent(t, r)
		if err != nil {
			break
		}
		if !ev.isComment {
			last = ev
		}
	}
	var final struct {
		Errors []struct {
			Message    string
			Extensions map[string]any
		}
	}
	if err := json.Unmarshal([]byte(last.data), &final); err != nil || last.name != "next" || len(final.Errors) != 1 ||
		final.Errors[0].Extensions["code"] != "SLOW_CONSUMER" || !strings.Contains(final.Errors[0].Message, "slow consumer") {
		t.Fatalf("last event %+v, want a SLOW_CONSUMER error", last)
	}
	if st := e.ts.Stats(); st.SlowClosed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A stream ends when its token expires: an UNAUTHENTICATED event, then
// "complete"; a request with an expired token gets 401.
func TestSSETokenExpiry(t *testing.T) {
	exp := time.Now().Add(time.Second)
	e := start(t, func(c *transport.Config) {
		c.Expiry = func(context.Context) time.Time { return exp }
	})
	_, r := e.openSSE("erin", "")
	ev := nextEvent(t, r)
	if ev.name != "next" || !strings.Contains(ev.data, "UNAUTHENTICATED") || !strings.Contains(ev.data, "token expired") {
		t.Fatalf("got %+v, want an UNAUTHENTICATED event", ev)
	}
	if ev := nextEvent(t, r); ev.name != "complete" {
		t.Fatalf("got %+v, want complete", ev)
	}
	if _, err := readEvent(t, r); err == nil {
		t.Fatal("stream still open after its token expired")
	}
	resp, body := post(t, e.url, `{"query":"subscription { onNotificationReceived(userName: \"erin\") { id } }"}`)
	if resp.StatusCode != 401 || !strings.Contains(body, "UNAUTHENTICATED") {
		t.Fatalf("expired token: %d %s", resp.StatusCode, body)
	}
}

// A subscription sent by plain POST (no stream to carry it) is refused
// with a code that says where to send it.
func TestSubscriptionByPlainPOST(t *testing.T) {
	e := start(t, nil)
	resp, err := http.Post(e.url, "application/json", strings.NewReader(`{"query":"subscription { onNotificationReceived(userName: \"a\") { id } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "BAD_REQUEST") || !strings.Contains(string(b), "WebSocket") {
		t.Fatalf("POST subscription: %d %s", resp.StatusCode, b)
	}
	if e.hub.Stats().Subscriptions != 0 {
		t.Fatal("a POST made a subscription")
	}
}
