package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"github.com/oshirase/oshirase/pub/graph"
	"github.com/oshirase/oshirase/pub/internal/access"
	"github.com/oshirase/oshirase/pub/internal/publisher"
	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/service/gqlserve/selectiontest"
	"github.com/oshirase/oshirase/wire"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// scripted is a publisher whose answers the notices' texts decide, so
// that both executors see the same ones: "fail…" fails that notice alone
// (with a message that needs escaping), "whole" fails the call, "panic"
// panics; any other text goes out to len(text) receivers. A single
// publish fails or panics as a batch's notice would.
type scripted struct{}

func (scripted) Publish(_ context.Context, _ string, n publisher.Notice) (int, *wire.Message, error) {
	switch {
	case n.Text == "panic":
		panic("scripted panic")
	case n.Text == "whole":
		return 0, nil, fmt.Errorf("%w: redis did not answer", errkind.ErrUnavailable)
	case strings.HasPrefix(n.Text, "fail"):
		return 0, nil, fmt.Errorf("%w: \"%s\" \u2028 <b>\x01 é", errkind.ErrBadInput, n.Text)
	}
	return len(n.Text), &wire.Message{ID: "one-" + n.To + "-" + n.IdempotencyKey, TS: 1_700_000_000_123}, nil
}

func (scripted) PublishBatch(_ context.Context, _ string, ns []publisher.Notice) ([]publisher.Result, error) {
	out := make([]publisher.Result, len(ns))
	for i, n := range ns {
		switch {
		case n.Text == "panic":
			panic("scripted panic")
		case n.Text == "whole":
			return nil, fmt.Errorf("%w: redis did not answer", errkind.ErrUnavailable)
		case strings.HasPrefix(n.Text, "fail"):
			out[i].Err = fmt.Errorf("%w: \"%s\" \u2028 <b>\x01 é", errkind.ErrBadInput, n.Text)
		default:
			out[i] = publisher.Result{Received: len(n.Text), Msg: &wire.Message{ID: fmt.Sprintf("m%d-\"%s\"", i, n.To), TS: 1_700_000_000_999 + int64(i)*1000}}
		}
	}
	return out, nil
}

func (scripted) CheckBatch(n int) error {
	if n > 5 {
		return fmt.Errorf("%w: %d inputs, more than MAX_BATCH (5)", errkind.ErrBadInput, n)
	}
	return nil
}

// server is pub's GraphQL handler over scripted, as a tenant's publisher
// credential calls it, with or without BatchRenderer; fields counts the
// field resolutions that go through gqlgen's field middleware.
func server(renderer bool, fields *atomic.Int64) http.Handler {
	res := &graph.Resolver{Publisher: scripted{}, Log: quiet}
	gql := gqlserve.NewGraphQL(graph.NewExecutableSchema(graph.Config{Resolvers: res}),
		gqlserve.NewLimits(gqlserve.LimitsConfig{Logger: quiet}), true, quiet)
	gql.AroundFields(func(ctx context.Context, next graphql.Resolver) (any, error) {
		fields.Add(1)
		return next(ctx)
	})
	if renderer {
		gql.Use(graph.BatchRenderer{Resolvers: res})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := auth.WithIdentity(r.Context(), auth.Identity{Tenant: "acme", User: "svc", Publisher: true})
		gql.ServeHTTP(w, r.WithContext(access.WithCredential(ctx, "key-a")))
	})
}

type answer struct {
	status int
	ctype  string
	body   string
	fields int64
}

func ask(h http.Handler, fields *atomic.Int64, query string, vars any) answer {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	r := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	fields.Store(0)
	h.ServeHTTP(w, r)
	return answer{w.Code, w.Header().Get("Content-Type"), w.Body.String(), fields.Load()}
}

func inputs(texts ...string) []map[string]any {
	var out []map[string]any
	for i, t := range texts {
		in := map[string]any{"scope": "PERSON", "to": fmt.Sprintf("u%d", i), "text": t}
		switch i % 4 {
		case 1:
			in["idempotencyKey"] = fmt.Sprintf("k%d", i)
		case 2:
			in = map[string]any{"scope": "COMPANY", "text": t}
		case 3:
			in["tenant"] = "other" // refused for this item alone: another tenant
		}
		out = append(out, in)
	}
	return out
}

// BatchRenderer answers every request as gqlgen itself does: the same
// status and the same bytes, for selection sets written every way GraphQL
// allows, for items that fail, calls that fail, panics and bad input.
func TestBatchRendererAnswersAsGqlgen(t *testing.T) {
	var slowFields, fastFields atomic.Int64
	slow, fast := server(false, &slowFields), server(true, &fastFields)
	const sel = `receivedUsers id timestamp error { code message }`
	ok := inputs("hi", "hello", "all", "x", "fail one")
	cases := []struct {
		name  string
		query string
		vars  map[string]any
	}{
		{"plain", `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { ` + sel + ` } }`, map[string]any{"in": ok}},
		{"aliases and typename", `mutation($in: [PublishInput!]!) { r: publishBatch(inputs: $in) { __typename n: receivedUsers id id i: id e: error { __typename c: code message c: code } t: timestamp } }`, map[string]any{"in": ok}},
		{"fragments", `mutation($in: [PublishInput!]!, $s: Boolean!) { publishBatch(inputs: $in) { ...R ... on PublishResult { timestamp @skip(if: $s) } ... @include(if: $s) { id } error { ...E } } }
			fragment R on PublishResult { receivedUsers id }
			fragment E on PublishError { message code }`, map[string]any{"in": ok, "s": true}},
		{"fragments not skipped", `mutation($in: [PublishInput!]!, $s: Boolean!) { publishBatch(inputs: $in) { ... on PublishResult { timestamp @skip(if: $s) } ... @include(if: $s) { id } receivedUsers @include(if: $s) } }`, map[string]any{"in": ok, "s": false}},
		{"literal inputs", `mutation { publishBatch(inputs: [{scope: PERSON, to: "bob", text: "hi \"bob\""}, {scope: STORE, to: "s1", text: "fail"}, {scope: PUBLIC, text: "all"}]) { ` + sel + ` } }`, nil},
		{"one input where a list is expected", `mutation($in: PublishInput!) { publishBatch(inputs: [$in]) { ` + sel + ` } }`, map[string]any{"in": ok[0]}},
		{"a single object as the list", `mutation { publishBatch(inputs: {scope: PERSON, to: "bob", text: "hi"}) { ` + sel + ` } }`, nil},
		{"empty", `mutation { publishBatch(inputs: []) { ` + sel + ` } }`, nil},
		{"beside other fields", `mutation($in: [PublishInput!]!) { a: sendNotification(to: "bob", text: "one") { receivedUsers } b: publishBatch(inputs: $in) { id } c: publishBatch(inputs: $in) { error { code } } }`, map[string]any{"in": ok}},
		{"too many", `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { id } }`, map[string]any{"in": inputs("1", "2", "3", "4", "5", "6")}},
		{"too many beside another field", `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { id } sendNotification(to: "bob", text: "one") { id } }`, map[string]any{"in": inputs("1", "2", "3", "4", "5", "6")}},
		{"the call fails", `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { id } }`, map[string]any{"in": inputs("a", "whole")}},
		{"the resolver panics", `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { id } }`, map[string]any{"in": inputs("a", "panic")}},
		{"bad scope", `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { id } }`, map[string]any{"in": []any{map[string]any{"scope": "GALAXY", "text": "x"}}}},
		{"lower-case scope", `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { error { code message } } }`, map[string]any{"in": []any{map[string]any{"scope": "person", "to": "a", "text": "x"}}}},
		{"unknown input field", `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { id } }`, map[string]any{"in": []any{map[string]any{"scope": "PERSON", "to": "a", "text": "x", "colour": "red"}}}},
		{"text not a string", `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { id } }`, map[string]any{"in": []any{map[string]any{"scope": "PERSON", "to": "a", "text": 5}}}},
		{"null item", `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { id } }`, map[string]any{"in": []any{nil}}},
		{"unknown field", `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { id colour } }`, map[string]any{"in": ok}},
		{"a query", `{ ok }`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := ask(slow, &slowFields, c.query, c.vars)
			got := ask(fast, &fastFields, c.query, c.vars)
			if got.status != want.status || got.ctype != want.ctype || got.body != want.body {
				t.Fatalf("with BatchRenderer:\n%d %s %s\ngqlgen:\n%d %s %s", got.status, got.ctype, got.body, want.status, want.ctype, want.body)
			}
		})
	}

	// What it saves, counted: gqlgen resolves each item's every field
	// through the field middleware; BatchRenderer resolves publishBatch
	// once and writes the items.
	want := ask(slow, &slowFields, cases[0].query, cases[0].vars)
	got := ask(fast, &fastFields, cases[0].query, cases[0].vars)
	if got.fields != 1 || want.fields < int64(len(ok)) {
		t.Fatalf("field resolutions for a batch of %d: %d with BatchRenderer (want 1), %d with gqlgen", len(ok), got.fields, want.fields)
	}
}

// Random selection sets of PublishResult, written with aliases,
// repeats, inline and named fragments, @skip and @include: BatchRenderer
// writes each as gqlgen does.
func TestBatchRendererRandomSelections(t *testing.T) {
	var slowFields, fastFields atomic.Int64
	slow, fast := server(false, &slowFields), server(true, &fastFields)
	rnd := rand.New(rand.NewPCG(1, 2))
	result := &selectiontest.Object{
		Type: "PublishResult",
		Fields: map[string][]string{
			"receivedUsers": {"", "n: ", "receivedUsers: "},
			"id":            {"", "i: ", "id: "},
			"timestamp":     {"", "t: "},
			"__typename":    {"", "tn: "},
		},
		Objects: map[string]*selectiontest.Object{"error": {
			Type:   "PublishError",
			Fields: map[string][]string{"code": {"", "c: "}, "message": {""}, "__typename": {""}},
		}},
		Fragment: "F",
	}
	in := inputs("hi", "fail", "all", "x", "yo")
	rendered := 0
	for range 300 {
		q := `mutation($in: [PublishInput!]!, $b: Boolean!) { publishBatch(inputs: $in) { t: timestamp @include(if: $b) ...F @skip(if: $b) ` + selectiontest.Random(rnd, result) + ` } }
			fragment F on PublishResult { timestamp error { c: code } }`
		vars := map[string]any{"in": in, "b": rnd.IntN(2) == 0}
		want := ask(slow, &slowFields, q, vars)
		got := ask(fast, &fastFields, q, vars)
		if got.status != want.status || got.body != want.body {
			t.Fatalf("%s %v\nwith BatchRenderer:\n%d %s\ngqlgen:\n%d %s", q, vars["b"], got.status, got.body, want.status, want.body)
		}
		if got.fields == 1 {
			rendered++
		}
	}
	if rendered != 300 {
		t.Fatalf("BatchRenderer wrote %d of 300 answers; gqlgen the others", rendered)
	}
}

// gqlparser takes a variable's enum value in any case ("person") and
// gqlgen's mapping then leaves the scope empty: the caller is told which
// values there are, not that "" is unknown.
func TestLowerCaseScopeIsNamed(t *testing.T) {
	var fields atomic.Int64
	h := server(true, &fields)
	in := map[string]any{"scope": "person", "to": "bob", "text": "hi"}
	for _, q := range []struct {
		query string
		vars  map[string]any
	}{
		{`mutation($in: PublishInput!) { publish(input: $in) { id } }`, map[string]any{"in": in}},
		{`mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { error { code message } } }`, map[string]any{"in": []any{in}}},
	} {
		got := ask(h, &fields, q.query, q.vars)
		if !strings.Contains(got.body, `BAD_USER_INPUT`) || !strings.Contains(got.body, `scope is not one of PERSON, STORE, COMPANY, PUBLIC`) {
			t.Fatalf("%s: %s", q.query, got.body)
		}
	}
}
