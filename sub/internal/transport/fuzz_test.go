package transport_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/oshirase/oshirase/sub/internal/transport"
)

// fuzzDeadline bounds one fuzz input end to end: a server that neither
// answers nor closes within it hangs.
const fuzzDeadline = 5 * time.Second

// fuzzReadLimit is small, so that the fuzzer reaches 1009 too.
const fuzzReadLimit = 1024

// The message types each subprotocol's server sends, and the close codes
// it may end a connection with after the client's messages (the client's
// last message always ends it; 1011, a panic caught, never).
var fuzzProtocols = map[bool]struct {
	name  string
	types map[string]bool
	codes map[int]bool
	end   string
}{
	false: {"graphql-transport-ws",
		map[string]bool{"connection_ack": true, "ping": true, "pong": true, "next": true, "error": true, "complete": true},
		map[int]bool{4400: true, 4401: true, 4403: true, 4408: true, 4409: true, 4429: true, 1009: true},
		`{"type":"next","id":"fuzz-end","payload":{}}`}, // the server's type: 4400 in any state
	true: {"graphql-ws",
		map[string]bool{"connection_ack": true, "connection_error": true, "ka": true, "data": true, "error": true, "complete": true},
		map[int]bool{1000: true, 1002: true, 4403: true, 1009: true},
		`{"type":"connection_terminate"}`}, // 1000 in any state
}

// FuzzWebSocket drives the real handler (sub's schema, the hub, the bus, a
// redis-server) over a real WebSocket with fuzzed client messages, one per
// line, on either subprotocol, then a message that ends the connection in
// any state. Every message the server sends is a JSON message of its
// protocol, the connection ends with one of the protocol's close codes
// (never 1011, a panic) within fuzzDeadline, and the server forgets it and
// its subscriptions.
func FuzzWebSocket(f *testing.F) {
	sub := `{"query":"subscription{onNotificationReceived(userName:\"bob\"){id text}}"}`
	for _, tc := range []struct {
		legacy bool
		frames string
	}{
		{false, `{"type":"connection_init"}` + "\n" + `{"type":"subscribe","id":"1","payload":` + sub + `}` + "\n" + `{"type":"complete","id":"1"}`},
		{false, `{"type":"ping","payload":{"x":1}}` + "\n" + `{"type":"connection_init","payload":{}}` + "\n" + `{"type":"subscribe","id":"q","payload":{"query":"{__typename}"}}`},
		{false, `{"type":"connection_init"}` + "\n" + `{"type":"subscribe","id":"a","payload":` + sub + `}` + "\n" + `{"type":"subscribe","id":"a","payload":` + sub + `}`},
		{false, `{"type":"connection_init"}` + "\n" + `{"type":"subscribe","id":"v","payload":{"query":"subscription{nope}"}}`},
		{false, `{"type":"subscribe","id":"1","payload":` + sub + `}`},
		{false, `{"type":"connection_init"}` + "\n" + `{"type":"connection_init"}`},
		{false, `{"type":"pong"}` + "\n" + `[` + "\n" + `{}`},
		{false, `{"type":"connection_init","payload":"` + strings.Repeat("x", fuzzReadLimit) + `"}`},
		{true, `{"type":"connection_init"}` + "\n" + `{"type":"start","id":"1","payload":` + sub + `}` + "\n" + `{"type":"start","id":"1","payload":` + sub + `}` + "\n" + `{"type":"stop","id":"1"}`},
		{true, `{"type":"connection_init"}` + "\n" + `{"type":"start","id":"q","payload":{"query":"{__typename}"}}`},
		{true, `{"type":"start","id":"1","payload":` + sub + `}`},
		{true, `{"type":"connection_init","payload":[]}`},
		{true, `{"type":"connection_init"}` + "\n" + `{"type":"start","id":"1","payload":"x"}`},
		{true, `{"type":"subscribe"}`},
	} {
		f.Add(tc.legacy, tc.frames)
	}
	e := serve(f, func(c *transport.Config) {
		c.ReadLimit = fuzzReadLimit
		c.InitTimeout = fuzzDeadline
		c.MaxSubscriptions = 3
	})
	ws := "ws" + strings.TrimPrefix(e.url, "http")
	f.Fuzz(func(t *testing.T, legacy bool, frames string) {
		p := fuzzProtocols[legacy]
		d := websocket.Dialer{Subprotocols: []string{p.name}, HandshakeTimeout: fuzzDeadline}
		conn, _, err := d.Dial(ws, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if conn.Subprotocol() != p.name {
			t.Fatalf("subprotocol %q, want %q", conn.Subprotocol(), p.name)
		}
		deadline := time.Now().Add(fuzzDeadline)
		_ = conn.SetReadDeadline(deadline)
		_ = conn.SetWriteDeadline(deadline)
		lines := strings.Split(frames, "\n")
		if len(lines) > 16 {
			lines = lines[:16]
		}
		for _, l := range append(lines, p.end) {
			if conn.WriteMessage(websocket.TextMessage, []byte(l)) != nil {
				break // closed by the server already: its close tells why
			}
		}
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("%s %q: no close within %s: %v", p.name, frames, fuzzDeadline, err)
				}
				if !p.codes[ce.Code] {
					t.Fatalf("%s %q: closed with %d %q", p.name, frames, ce.Code, ce.Text)
				}
				break
			}
			var m struct {
				ID      *string         `json:"id"`
				Type    string          `json:"type"`
				Payload json.RawMessage `json:"payload"`
			}
			if err := json.Unmarshal(data, &m); err != nil || !p.types[m.Type] {
				t.Fatalf("%s %q: server sent %q (%v)", p.name, frames, data, err)
			}
			if needsID := m.Type != "connection_ack" && m.Type != "connection_error" && m.Type != "ka" && m.Type != "ping" && m.Type != "pong"; needsID != (m.ID != nil) {
				t.Fatalf("%s %q: server sent %s", p.name, frames, data)
			}
		}
		_ = conn.Close()
		for e.ts.Stats().Open != 0 || e.hub.Stats().Subscriptions != 0 {
			if time.Now().After(deadline.Add(fuzzDeadline)) {
				t.Fatalf("%s %q: the server still holds %d connections, the hub %d subscriptions", p.name, frames, e.ts.Stats().Open, e.hub.Stats().Subscriptions)
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// FuzzSSE posts fuzzed bodies and Last-Event-ID headers to the real SSE
// handler: a body that is no GraphQL request is a 400 (over the read
// limit a 413) with a code; anything else is an event stream whose events
// are "next" with a GraphQL response, or "complete", within fuzzDeadline
// (a live subscription's stream stays open: its head is enough).
func FuzzSSE(f *testing.F) {
	for _, tc := range []struct{ body, lastEventID string }{
		{`{"query":"subscription{onNotificationReceived(userName:\"bob\"){id text cursor}}"}`, ""},
		{`{"query":"subscription{onNotificationReceived(userName:\"bob\"){id}}"}`, "AQID"},
		{`{"query":"subscription($a:String){onNotificationReceived(userName:\"bob\",after:$a){id}}","variables":{"a":"garbage"}}`, ""},
		{`{"query":"{__typename}"}`, ""},
		{`{"query":"subscription{nope}"}`, ""},
		{`{"query":"subscription{onNotificationReceived(userName:\"\"){id}}"}`, ""},
		{`{"query":1}`, ""},
		{`{"query":"` + strings.Repeat("x", fuzzReadLimit) + `"}`, ""},
		{`[]`, ""},
		{``, "x"},
	} {
		f.Add(tc.body, tc.lastEventID)
	}
	e := serve(f, func(c *transport.Config) { c.ReadLimit = fuzzReadLimit })
	client := &http.Client{Timeout: fuzzDeadline}
	f.Fuzz(func(t *testing.T, body, lastEventID string) {
		req, err := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		if lastEventID != "" {
			req.Header.Set("Last-Event-ID", lastEventID)
		}
		resp, err := client.Do(req)
		if err != nil {
			return // a header value the server refused to read
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			var r struct {
				Errors []struct {
					Message    string
					Extensions struct{ Code string }
				}
			}
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Errors) != 1 || r.Errors[0].Extensions.Code == "" {
				t.Fatalf("%q: %d without a coded error (%v)", body, resp.StatusCode, err)
			}
			want := map[int]string{http.StatusBadRequest: "BAD_REQUEST", http.StatusRequestEntityTooLarge: "REQUEST_TOO_LARGE"}[resp.StatusCode]
			if r.Errors[0].Extensions.Code != want {
				t.Fatalf("%q: %d %s", body, resp.StatusCode, r.Errors[0].Extensions.Code)
			}
			return
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("%q: 200 with %q", body, ct)
		}
		if resp.Header.Get("X-Accel-Buffering") == "no" {
			return // a live stream: it runs until the client goes
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				event = ""
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
				if event != "next" && event != "complete" {
					t.Fatalf("%q: event %q", body, event)
				}
			case strings.HasPrefix(line, "data: "):
				var r struct {
					Data   json.RawMessage
					Errors []struct{ Extensions struct{ Code string } }
				}
				if event != "next" || json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &r) != nil {
					t.Fatalf("%q: %q in event %q", body, line, event)
				}
				for _, e := range r.Errors {
					if e.Extensions.Code == "" {
						t.Fatalf("%q: an error without a code: %s", body, line)
					}
				}
			default:
				t.Fatalf("%q: line %q", body, line)
			}
		}
		if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("%q: %v", body, err)
		}
	})
}
