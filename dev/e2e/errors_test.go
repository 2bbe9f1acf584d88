package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// answer is an HTTP response read whole.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

var rawClient = &http.Client{Timeout: 15 * time.Second}

// request sends body to url with header pairs ("Content-Type",
// "application/json", …) and reads the whole answer.
func request(t *testing.T, method, url string, body io.Reader, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// postJSON posts a GraphQL request {"query": query} as application/json.
func postJSON(t *testing.T, url, query string, header ...string) answer {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	return request(t, http.MethodPost, url, bytes.NewReader(body), append([]string{"Content-Type", "application/json"}, header...)...)
}

// codes returns extensions.code of every error in a GraphQL response or
// error list, "<none>" for an error without one.
func codes(t *testing.T, body []byte) []string {
	t.Helper()
	type gqlError struct {
		Extensions struct{ Code string } `json:"extensions"`
	}
	var resp struct{ Errors []gqlError }
	if err := json.Unmarshal(body, &resp); err != nil {
		var list []gqlError // a graphql-ws "error" payload
		if err2 := json.Unmarshal(body, &list); err2 != nil {
			t.Fatalf("not a GraphQL response or error list: %v: %.300s", err, body)
		}
		resp.Errors = list
	}
	var out []string
	for _, e := range resp.Errors {
		if e.Extensions.Code == "" {
			e.Extensions.Code = "<none>"
		}
		out = append(out, e.Extensions.Code)
	}
	return out
}

// expectRefusal checks an HTTP answer: status, a JSON GraphQL body whose
// errors all carry code, and none of the request's marker echoed back.
func expectRefusal(t *testing.T, a answer, status int, code, marker string) {
	t.Helper()
	if a.Status != status {
		t.Fatalf("status %d, want %d: %.300s", a.Status, status, a.Body)
	}
	if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/graphql-response+json") {
		t.Fatalf("Content-Type %q, want JSON: %.300s", ct, a.Body)
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(a.Body, &entries); err != nil {
		t.Fatalf("not a JSON object: %v: %.300s", err, a.Body)
	}
	if _, ok := entries["data"]; ok {
		t.Fatalf("a request that did not run answered with a data entry: %.300s", a.Body)
	}
	got := codes(t, a.Body)
	if len(got) == 0 || slices.ContainsFunc(got, func(c string) bool { return c != code }) {
		t.Fatalf("codes %v, want only %s: %.300s", got, code, a.Body)
	}
	if marker != "" && bytes.Contains(a.Body, []byte(marker)) {
		t.Fatalf("the answer repeats the request back: %.300s", a.Body)
	}
}

// sseEvents posts a GraphQL request asking for an event stream and returns
// the status, the content type and the events of a stream the server ends
// (an error ends it).
func sseEvents(t *testing.T, s *harness.Service, query string, header ...string) (answer, []sseEvent) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	a := request(t, http.MethodPost, s.URL+"/graphql", bytes.NewReader(body),
		append([]string{"Content-Type", "application/json", "Accept", "text/event-stream"}, header...)...)
	var events []sseEvent
	var ev sseEvent
	for _, line := range strings.Split(string(a.Body), "\n") {
		switch {
		case line == "":
			if ev != (sseEvent{}) {
				events = append(events, ev)
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event:"):
			ev.Event = strings.TrimSpace(line[6:])
		case strings.HasPrefix(line, "data:"):
			ev.Data += strings.TrimSpace(line[5:])
		}
	}
	return a, events
}

// expectSSEError checks that an SSE request got what graphql-sse's
// distinct connections mode specifies for an invalid operation: an
// accepted stream, one "next" event carrying the errors (each with code),
// then "complete".
func expectSSEError(t *testing.T, a answer, events []sseEvent, code string) {
	t.Helper()
	if a.Status != http.StatusOK || a.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q, want an event stream: %.300s", a.Status, a.Header.Get("Content-Type"), a.Body)
	}
	if len(events) != 2 || events[0].Event != "next" || events[1].Event != "complete" {
		t.Fatalf("events %+v, want next and complete", events)
	}
	if got := codes(t, []byte(events[0].Data)); len(got) == 0 || slices.ContainsFunc(got, func(c string) bool { return c != code }) {
		t.Fatalf("codes %v, want only %s: %s", got, code, events[0].Data)
	}
}

// expectWSError waits for the "error" message of operation id (no "next"
// before it) whose errors all carry code.
func expectWSError(t *testing.T, c *gqlws.Client, id, code string) {
	t.Helper()
	m, err := c.Next(10 * time.Second)
	for err == nil && m.Type == "complete" && m.ID != id { // the end of an earlier operation
		m, err = c.Next(10 * time.Second)
	}
	if err != nil {
		t.Fatalf("waiting for the error of %q: %v", id, err)
	}
	if m.Type != "error" || m.ID != id {
		t.Fatalf("got %s %q %s, want error %q", m.Type, m.ID, m.Payload, id)
	}
	got := codes(t, m.Payload)
	if c.Protocol == gqlws.LegacyWS && len(got) == 0 { // subscriptions-transport-ws: one error object
		got = codes(t, append(append([]byte(`{"errors":[`), m.Payload...), ']', '}'))
	}
	if len(got) == 0 || slices.ContainsFunc(got, func(c string) bool { return c != code }) {
		t.Fatalf("codes %v, want only %s: %s", got, code, m.Payload)
	}
}

// subscribeQuery starts query under id, as a client of c's subprotocol
// does.
func subscribeQuery(t *testing.T, c *gqlws.Client, id, query string) {
	t.Helper()
	typ := "subscribe"
	if c.Protocol == gqlws.LegacyWS {
		typ = "start"
	}
	payload, _ := json.Marshal(map[string]any{"query": query})
	if err := c.Send(gqlws.Msg{ID: id, Type: typ, Payload: payload}); err != nil {
		t.Fatal(err)
	}
}

// Issue 14, defect 3: a subscription selects exactly one root field (the
// spec's "Single root field" rule, which counts aliases and, in its draft,
// forbids @skip and @include there). One that does not is invalid
// GraphQL, answered as a validation error on every transport, before
// anything runs: an "error" message on a WebSocket, an event stream with
// the errors over SSE, a request error over plain POST (HTTP 200 to
// application/json, no data entry). The connection carries
// on.
func TestSubscriptionWithoutOneRootFieldIsInvalid(t *testing.T) {
	s := startStack(t)
	invalid := map[string]string{
		"two aliases":         `subscription { a: onNotificationReceived(userName: "ivan") { id } b: onNotificationReceived(userName: "judy") { id } }`,
		"alias in fragment":   `subscription { onNotificationReceived(userName: "ivan") { id } ...F } fragment F on Subscription { b: onNotificationReceived(userName: "judy") { id } }`,
		"root __typename":     `subscription { onNotificationReceived(userName: "ivan") { id } __typename }`,
		"@skip on the root":   `subscription { onNotificationReceived(userName: "ivan") @skip(if: true) { id } }`,
		"@include via spread": `subscription { ...F @include(if: false) } fragment F on Subscription { onNotificationReceived(userName: "ivan") { id } }`,
	}
	for _, protocol := range []string{gqlws.TransportWS, gqlws.LegacyWS} {
		t.Run(protocol, func(t *testing.T) {
			c := connect(t, s.sub, protocol)
			for name, q := range invalid {
				subscribeQuery(t, c, name, q)
				expectWSError(t, c, name, "GRAPHQL_VALIDATION_FAILED")
			}
			drain(c)
			subscribe(t, c, "ok", "ivan")
			s.pub.WaitReceivers("ivan", 1)
			send(t, s.pub, "ivan", "one root field is fine")
			expectNotice(t, c, "one root field is fine")
		})
	}
	t.Run("SSE", func(t *testing.T) {
		for name, q := range invalid {
			a, events := sseEvents(t, s.sub, q)
			t.Run(name, func(t *testing.T) { expectSSEError(t, a, events, "GRAPHQL_VALIDATION_FAILED") })
		}
	})
	t.Run("POST", func(t *testing.T) {
		for name, q := range invalid {
			t.Run(name, func(t *testing.T) {
				expectRefusal(t, postJSON(t, s.sub.URL+"/graphql", q), http.StatusOK, "GRAPHQL_VALIDATION_FAILED", "")
			})
		}
	})
	if log := s.sub.Log(); strings.Contains(log, "exactly one stream") || strings.Contains(log, "level=ERROR") {
		t.Fatalf("an invalid subscription reached execution:\n%s", log)
	}
}

// Issue 14, defect 4: malformed GraphQL is answered GRAPHQL_PARSE_FAILED,
// as the README's error table says, with HTTP 200 and no data entry to an
// application/json client (400 to one that accepts
// application/graphql-response+json, as the GraphQL-over-HTTP spec asks) and an "error" message on a
// WebSocket.
func TestMalformedGraphQLIsAParseError(t *testing.T) {
	s := startStack(t)
	const broken = `mutation { sendNotification(to: "bob"`
	expectRefusal(t, postJSON(t, s.pub.URL+"/query", broken), http.StatusOK, "GRAPHQL_PARSE_FAILED", "")
	expectRefusal(t, postJSON(t, s.pub.URL+"/query", broken, "Accept", "application/graphql-response+json"),
		http.StatusBadRequest, "GRAPHQL_PARSE_FAILED", "")
	expectRefusal(t, postJSON(t, s.sub.URL+"/graphql", `{ ok`), http.StatusOK, "GRAPHQL_PARSE_FAILED", "")
	a, events := sseEvents(t, s.sub, `subscription { onNotificationReceived(`)
	expectSSEError(t, a, events, "GRAPHQL_PARSE_FAILED")
	for _, protocol := range []string{gqlws.TransportWS, gqlws.LegacyWS} {
		c := connect(t, s.sub, protocol)
		subscribeQuery(t, c, "bad", `subscription { onNotificationReceived(`)
		expectWSError(t, c, "bad", "GRAPHQL_PARSE_FAILED")
	}
}

// A subscription over plain POST, which has room for one answer, is
// refused at once; gqlgen held such a request open until the first notice.
func TestSubscriptionOverPlainPOSTIsRefused(t *testing.T) {
	s := startStack(t)
	start := time.Now()
	a := postJSON(t, s.sub.URL+"/graphql", `subscription { onNotificationReceived(userName: "kate") { id } }`)
	expectRefusal(t, a, http.StatusOK, "BAD_REQUEST", "")
	a = postJSON(t, s.sub.URL+"/graphql", `subscription { onNotificationReceived(userName: "kate") { id } }`, "Accept", "application/graphql-response+json")
	expectRefusal(t, a, http.StatusBadRequest, "BAD_REQUEST", "")
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("answered after %s", took)
	}
	if !bytes.Contains(a.Body, []byte("text/event-stream")) {
		t.Fatalf("the refusal does not say how to subscribe: %s", a.Body)
	}
}

// drain reads what c still has to say (legacy graphql-ws follows an error
// with a complete) until it falls silent.
func drain(c *gqlws.Client) {
	for {
		if _, err := c.Next(300 * time.Millisecond); err != nil {
			return
		}
	}
}
