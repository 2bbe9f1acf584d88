package graph_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/oshirase/oshirase/pub/graph"
	"github.com/oshirase/oshirase/pub/internal/access"
	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/gqlserve"
)

// preparedServer is pub's handler as app builds it by default: gqlgen
// with BatchRenderer and Prepared, Prepared's plans served in front of it,
// behind LimitBody; gqlgenServer the same without Prepared.
func preparedServer(prepared bool) (http.Handler, *graph.Prepared) {
	res := &graph.Resolver{Publisher: scripted{}, Log: quiet}
	limits := gqlserve.NewLimits(gqlserve.LimitsConfig{Logger: quiet})
	gql := gqlserve.NewGraphQL(graph.NewExecutableSchema(graph.Config{Resolvers: res}), limits, true, quiet)
	var h http.Handler = gql
	var p *graph.Prepared
	if prepared { // first, as app has it: the outermost extension
		p = graph.NewPrepared(res, quiet)
		gql.Use(p)
		h = gqlserve.Shortcut(gql, p.Serve)
	}
	gql.Use(graph.BatchRenderer{Resolvers: res})
	h = limits.LimitBody(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := auth.WithIdentity(r.Context(), auth.Identity{Tenant: "acme", User: "svc", Publisher: true})
		h.ServeHTTP(w, r.WithContext(access.WithCredential(ctx, "key-a")))
	}), p
}

type request struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
	Extensions    map[string]any `json:"extensions,omitempty"`
}

func send(h http.Handler, req request, accept string) answer {
	body, _ := json.Marshal(req)
	r := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return answer{status: w.Code, ctype: w.Header().Get("Content-Type"), body: w.Body.String()}
}

// Prepared answers every request as gqlgen does — the same status,
// content type and bytes — whether it answers from a plan (the second
// time a document is sent) or leaves the request to gqlgen; and it does
// answer the plain ones from a plan.
func TestPreparedAnswersAsGqlgen(t *testing.T) {
	const send1 = `mutation($to: String!, $text: String!) { sendNotification(to: $to, text: $text) { receivedUsers } }`
	const sendAll = `mutation Send($to: String!, $text: String!, $key: String) { n: sendNotification(to: $to, text: $text, idempotencyKey: $key) { __typename t: timestamp id receivedUsers i: id } }`
	const pub1 = `mutation($in: PublishInput!) { publish(input: $in) { receivedUsers id timestamp } }`
	const batch1 = `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { receivedUsers id timestamp error { code message } } }`
	const batchAll = `mutation B($in: [PublishInput!]!) { r: publishBatch(inputs: $in) { __typename ...R e: error { __typename m: message } n: receivedUsers ... on PublishResult { id } } } fragment R on PublishResult { timestamp error { code } n: receivedUsers }`
	bob := map[string]any{"to": "bob", "text": "hi"}
	cases := []struct {
		name   string
		req    request
		accept string
		served bool // answered from a plan the second time
	}{
		{"plain", request{Query: send1, Variables: bob}, "", true},
		{"graphql-response+json", request{Query: send1, Variables: bob}, "application/graphql-response+json", true},
		{"every field, aliased, key", request{Query: sendAll, Variables: map[string]any{"to": "bob", "text": "hé \"q\" \u2028", "key": "k1"}}, "", true},
		{"key null", request{Query: sendAll, Variables: map[string]any{"to": "bob", "text": "hi", "key": nil}}, "", true},
		{"key left out, operation named", request{Query: sendAll, OperationName: "Send", Variables: bob}, "", true},
		{"literals", request{Query: `mutation { sendNotification(to: "bob", text: "a\nb \"c\" \u00e9", idempotencyKey: null) { id receivedUsers } }`}, "", true},
		{"block string", request{Query: "mutation { sendNotification(to: \"bob\", text: \"\"\"\n  two\n  lines\n\"\"\") { id } }"}, "", true},
		{"literal key, variable text", request{Query: `mutation($t: String!) { sendNotification(to: "bob", text: $t, idempotencyKey: "k") { id } }`, Variables: map[string]any{"t": "x"}}, "", true},
		{"publish", request{Query: pub1, Variables: map[string]any{"in": map[string]any{"scope": "PERSON", "to": "bob", "text": "hi", "idempotencyKey": "k2"}}}, "", true},
		{"publish company, nulls", request{Query: pub1, Variables: map[string]any{"in": map[string]any{"scope": "COMPANY", "text": "all", "to": nil, "tenant": nil}}}, "", true},
		{"publish to another tenant", request{Query: pub1, Variables: map[string]any{"in": map[string]any{"scope": "COMPANY", "tenant": "other", "text": "x"}}}, "", true},
		{"publish without to", request{Query: pub1, Variables: map[string]any{"in": map[string]any{"scope": "PERSON", "text": "x"}}}, "", true},
		{"publish fails", request{Query: pub1, Variables: map[string]any{"in": map[string]any{"scope": "PERSON", "to": "bob", "text": "fail <x>"}}}, "", true},
		{"publisher unavailable", request{Query: send1, Variables: map[string]any{"to": "bob", "text": "whole"}}, "", true},
		{"resolver panics", request{Query: send1, Variables: map[string]any{"to": "bob", "text": "panic"}}, "", true},
		{"bad user name", request{Query: send1, Variables: map[string]any{"to": "b\x00b", "text": "hi"}}, "", true},
		{"an id json.Marshal escapes", request{Query: sendAll, Variables: map[string]any{"to": "<a&b>\u2028\u2029", "text": "hi"}}, "", true},
		{"batch", request{Query: batch1, Variables: map[string]any{"in": inputs("a", "fail <x>", "c", "d", "e")}}, "", true},
		{"batch, fragments and merged fields", request{Query: batchAll, OperationName: "B", Variables: map[string]any{"in": inputs("a", "fail", "c", "d")}}, "application/graphql-response+json", true},
		{"batch of none", request{Query: batch1, Variables: map[string]any{"in": []any{}}}, "", true},
		{"batch past MAX_BATCH", request{Query: batch1, Variables: map[string]any{"in": inputs("a", "b", "c", "d", "e", "f")}}, "", true},
		{"batch unavailable", request{Query: batch1, Variables: map[string]any{"in": inputs("a", "whole")}}, "", true},
		{"batch panics", request{Query: batch1, Variables: map[string]any{"in": inputs("panic")}}, "", true},
		{"batch with nulls and keys", request{Query: batch1, Variables: map[string]any{"in": []any{map[string]any{"scope": "STORE", "to": "s1", "text": "x", "tenant": nil, "idempotencyKey": "k"}, map[string]any{"scope": "PUBLIC", "text": "y", "to": nil}}}}, "", true},

		// Left to gqlgen: what it coerces, refuses or ignores, and what a
		// plan does not cover.
		{"to a number", request{Query: send1, Variables: map[string]any{"to": 5, "text": "hi"}}, "", false},
		{"to null", request{Query: send1, Variables: map[string]any{"to": nil, "text": "hi"}}, "", false},
		{"text left out", request{Query: send1, Variables: map[string]any{"to": "bob"}}, "", false},
		{"undeclared variable", request{Query: send1, Variables: map[string]any{"to": "bob", "text": "hi", "x": 1}}, "", false},
		{"key a list", request{Query: sendAll, Variables: map[string]any{"to": "bob", "text": "hi", "key": []any{"k"}}}, "", false},
		{"lower-case scope", request{Query: pub1, Variables: map[string]any{"in": map[string]any{"scope": "person", "to": "bob", "text": "hi"}}}, "", false},
		{"unknown input field", request{Query: pub1, Variables: map[string]any{"in": map[string]any{"scope": "PERSON", "to": "bob", "text": "hi", "colour": 1}}}, "", false},
		{"input text a number", request{Query: pub1, Variables: map[string]any{"in": map[string]any{"scope": "PERSON", "to": "bob", "text": 1}}}, "", false},
		{"input a string", request{Query: pub1, Variables: map[string]any{"in": "PERSON"}}, "", false},
		{"persisted query extension", request{Query: send1, Variables: bob, Extensions: map[string]any{"x": 1}}, "", false},
		{"fragment", request{Query: `mutation { sendNotification(to: "bob", text: "x") { ...F } } fragment F on SendNotificationResponse { id }`}, "", false},
		{"skip", request{Query: `mutation($s: Boolean!) { sendNotification(to: "bob", text: "x") { id @skip(if: $s) receivedUsers } }`, Variables: map[string]any{"s": true}}, "", false},
		{"a field twice", request{Query: `mutation { sendNotification(to: "bob", text: "x") { id id } }`}, "", false},
		{"two root fields", request{Query: `mutation { a: sendNotification(to: "bob", text: "x") { id } b: sendNotification(to: "ann", text: "y") { id } }`}, "", false},
		{"default value", request{Query: `mutation($to: String! = "bob") { sendNotification(to: $to, text: "x") { id } }`}, "", false},
		{"publish literal input", request{Query: `mutation { publish(input: {scope: PERSON, to: "bob", text: "x"}) { id } }`}, "", false},
		{"subscription", request{Query: `subscription { x }`}, "", false},
		{"second operation", request{Query: `mutation A { sendNotification(to: "bob", text: "a") { id } } mutation B { sendNotification(to: "bob", text: "b") { id } }`, OperationName: "B"}, "", true},
		{"no operation name, two operations", request{Query: `mutation A { sendNotification(to: "bob", text: "a") { id } } mutation B { sendNotification(to: "bob", text: "b") { id } }`}, "", false},
		{"unknown field", request{Query: `mutation { sendNotification(to: "bob", text: "x") { id colour } }`}, "", false},
		{"a query", request{Query: `{ ok }`}, "", false},
		{"batch of one, not a list", request{Query: batch1, Variables: map[string]any{"in": map[string]any{"scope": "PERSON", "to": "bob", "text": "hi"}}}, "", false},
		{"batch with a null item", request{Query: batch1, Variables: map[string]any{"in": []any{nil}}}, "", false},
		{"batch, lower-case scope in one item", request{Query: batch1, Variables: map[string]any{"in": []any{map[string]any{"scope": "PERSON", "text": "a"}, map[string]any{"scope": "person", "text": "b"}}}}, "", false},
		{"batch, an unknown field in one item", request{Query: batch1, Variables: map[string]any{"in": []any{map[string]any{"scope": "PERSON", "text": "a", "colour": "red"}}}}, "", false},
		{"batch null", request{Query: batch1, Variables: map[string]any{"in": nil}}, "", false},
		{"batch, skip", request{Query: `mutation($in: [PublishInput!]!, $s: Boolean!) { publishBatch(inputs: $in) { id @skip(if: $s) receivedUsers } }`, Variables: map[string]any{"in": inputs("a"), "s": true}}, "", false},
		{"batch, literal inputs", request{Query: `mutation { publishBatch(inputs: [{scope: PERSON, to: "bob", text: "x"}]) { id } }`}, "", false},
		{"batch, nullable list", request{Query: `mutation($in: [PublishInput!]) { publishBatch(inputs: $in) { id } }`, Variables: map[string]any{"in": inputs("a")}}, "", false},
	}
	slow, _ := preparedServer(false)
	fast, prepared := preparedServer(true)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := send(slow, c.req, c.accept)
			for i := range 2 {
				before := prepared.Served()
				got := send(fast, c.req, c.accept)
				if got != want {
					t.Fatalf("sent %d times, with Prepared:\n%d %s %s\ngqlgen:\n%d %s %s", i+1, got.status, got.ctype, got.body, want.status, want.ctype, want.body)
				}
				// The first time, from a plan only if an earlier case
				// sent the same document.
				if served := prepared.Served() > before; i == 1 && served != c.served || i == 0 && served && !c.served {
					t.Fatalf("sent %d times: answered from a plan: %v", i+1, served)
				}
			}
		})
	}
}

// A plan belongs to its document and operation name: the same document
// with another operation name, or one character apart, is gqlgen's again.
func TestPreparedPlanIsPerDocument(t *testing.T) {
	fast, prepared := preparedServer(true)
	q := `mutation A($to: String!) { sendNotification(to: $to, text: "x") { id } } mutation B($to: String!) { publish(input: {scope: PERSON, to: $to, text: "y"}) { id } }`
	vars := map[string]any{"to": "bob"}
	send(fast, request{Query: q, OperationName: "A", Variables: vars}, "")
	if send(fast, request{Query: q, OperationName: "A", Variables: vars}, ""); prepared.Served() != 1 {
		t.Fatalf("served %d, want 1", prepared.Served())
	}
	got := send(fast, request{Query: q, OperationName: "B", Variables: vars}, "")
	if prepared.Served() != 1 || got.body != `{"data":{"publish":{"id":"one-bob-"}}}` {
		t.Fatalf("operation B: served %d, %s", prepared.Served(), got.body)
	}
	send(fast, request{Query: q + " ", OperationName: "A", Variables: vars}, "")
	if prepared.Served() != 1 {
		t.Fatalf("another document served from A's plan")
	}
}

// Any variables, on documents Prepared has plans of: what it answers
// from a plan, gqlgen answers the same; the rest it leaves to gqlgen.
func FuzzPreparedVariables(f *testing.F) {
	docs := []string{
		`mutation($to: String!, $text: String!, $key: String) { sendNotification(to: $to, text: $text, idempotencyKey: $key) { id receivedUsers } }`,
		`mutation($text: String!) { r: sendNotification(to: "bob", text: $text) { timestamp __typename } }`,
		`mutation($in: PublishInput!) { publish(input: $in) { receivedUsers id timestamp } }`,
		`mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { receivedUsers id timestamp error { code message } } }`,
	}
	slow, _ := preparedServer(false)
	fast, prepared := preparedServer(true)
	learn := []map[string]any{
		{"to": "bob", "text": "hi"},
		{"text": "hi"},
		{"in": map[string]any{"scope": "PERSON", "to": "bob", "text": "hi"}},
		{"in": []any{map[string]any{"scope": "PERSON", "to": "bob", "text": "hi"}}},
	}
	for i, q := range docs {
		send(fast, request{Query: q, Variables: learn[i]}, "")
		send(fast, request{Query: q, Variables: learn[i]}, "")
	}
	if prepared.Served() != int64(len(docs)) {
		f.Fatalf("plans served %d of %d documents", prepared.Served(), len(docs))
	}
	f.Add(uint8(0), []byte(`{"to":"bob","text":"hi","key":null}`))
	f.Add(uint8(0), []byte(`{"to":"bob","text":"fail","key":"k"}`))
	f.Add(uint8(0), []byte(`{"to":"bob","text":"hi","key":7}`))
	f.Add(uint8(1), []byte(`{"text":"h\u00e9 \"x\" \ud83d"}`))
	f.Add(uint8(1), []byte(`{"text":"panic"}`))
	f.Add(uint8(2), []byte(`{"in":{"scope":"STORE","to":"s1","text":"x","tenant":"acme"}}`))
	f.Add(uint8(2), []byte(`{"in":{"scope":"PUBLIC","text":"x","idempotencyKey":null}}`))
	f.Add(uint8(2), []byte(`{"in":{"scope":"COMPANY","text":"x","tenant":"other"}}`))
	f.Add(uint8(2), []byte(`{"in":{"scope":"company","text":"x"},"extra":[1]}`))
	f.Add(uint8(3), []byte(`{"in":[{"scope":"PERSON","to":"a","text":"x"},{"scope":"COMPANY","text":"fail","tenant":"other"},{"scope":"STORE","to":"s","text":"y","idempotencyKey":"k"}]}`))
	f.Add(uint8(3), []byte(`{"in":[]}`))
	f.Add(uint8(3), []byte(`{"in":[{"scope":"PERSON","text":"panic"}]}`))
	f.Add(uint8(3), []byte(`{"in":[{"scope":"PERSON","text":"a"},{"scope":"PERSON","text":"whole"}]}`))
	f.Add(uint8(3), []byte(`{"in":[{"scope":"PERSON","text":"a"},{"scope":"PERSON","text":"b"},{"scope":"PERSON","text":"c"},{"scope":"PERSON","text":"d"},{"scope":"PERSON","text":"e"},{"scope":"PERSON","text":"f"}]}`))
	f.Add(uint8(3), []byte(`{"in":{"scope":"PERSON","text":"a"}}`))
	f.Fuzz(func(t *testing.T, doc uint8, vars []byte) {
		q, _ := json.Marshal(docs[int(doc)%len(docs)])
		body := `{"query":` + string(q) + `,"variables":` + string(vars) + `}`
		ask := func(h http.Handler) answer {
			r := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader([]byte(body)))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return answer{status: w.Code, ctype: w.Header().Get("Content-Type"), body: w.Body.String()}
		}
		before := prepared.Served()
		got := ask(fast)
		if prepared.Served() == before {
			return // gqlgen's answer (which may name any of several bad fields)
		}
		if want := ask(slow); got != want {
			t.Fatalf("%s\nwith Prepared:\n%d %s %s\ngqlgen:\n%d %s %s", body, got.status, got.ctype, got.body, want.status, want.ctype, want.body)
		}
	})
}
