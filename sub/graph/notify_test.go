package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/sub/graph"
	"github.com/oshirase/oshirase/wire"
)

type audience struct{}

func (audience) Channels(_ context.Context, user string) ([]wire.Channel, error) {
	if user == "" {
		return nil, errors.New("no user")
	}
	ch, err := wire.PersonChannel("acme", user)
	return []wire.Channel{ch}, err
}

func setup(t testing.TB) (*graph.Notifications, func(query string, vars map[string]any) *graph.Shape) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &graph.Resolver{Audience: audience{}}
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: r})
	exec := gqlserve.NewExecutor(schema, nil, true, log)
	n := graph.NewNotifications(schema, r, gqlserve.PresentError(log), gqlserve.Recover(log))
	open := func(query string, vars map[string]any) *graph.Shape {
		t.Helper()
		ctx := graphql.StartOperationTrace(context.Background())
		opCtx, errs := exec.CreateOperationContext(ctx, &graphql.RawParams{Query: query, Variables: vars})
		if errs != nil {
			t.Fatalf("%s: %v", query, errs)
		}
		fields := graphql.CollectFields(opCtx, opCtx.Operation.SelectionSet, []string{"Subscription"})
		if len(fields) != 1 {
			t.Fatalf("%s: %d root fields", query, len(fields))
		}
		_, shape, _, err := n.Open(ctx, opCtx, fields[0])
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return shape
	}
	return n, open
}

// Selections that are the same once aliases, fragments, __typename and
// @include/@skip are resolved share a shape and render the same bytes;
// different ones do not.
func TestShapes(t *testing.T) {
	n, open := setup(t)
	m := &wire.Message{V: 1, ID: "019ac4b2-0000-7000-8000-000000000000", Text: "hello \"you\"", TS: 1_700_000_000_123, Scope: wire.ScopeCompany}
	groups := []struct {
		want    string
		queries []string
		vars    map[string]any
	}{
		{`{"data":{"onNotificationReceived":{"id":"019ac4b2-0000-7000-8000-000000000000","text":"hello \"you\""}}}`, []string{
			`subscription { onNotificationReceived(userName: "a") { id text } }`,
			`subscription($u: String!) { onNotificationReceived(userName: $u) { id text } }`,
			`subscription { onNotificationReceived(userName: "b") { ...F } } fragment F on Notification { id text }`,
			`subscription { onNotificationReceived(userName: "c") { ... on Notification { id } text id } }`,
			`subscription($y: Boolean!) { onNotificationReceived(userName: "d") { id text @include(if: $y) timestamp @skip(if: $y) } }`,
		}, map[string]any{"u": "x", "y": true}},
		{`{"data":{"onNotificationReceived":{"id":"019ac4b2-0000-7000-8000-000000000000","text":"hello \"you\"","timestamp":1700000000,"scope":"COMPANY","__typename":"Notification"}}}`, []string{
			`subscription { onNotificationReceived(userName: "a") { id text timestamp scope __typename } }`,
			`subscription($y: Boolean!) { onNotificationReceived(userName: "a") { id ... @include(if: $y) { text timestamp } scope __typename } }`,
		}, map[string]any{"y": true}},
		{`{"data":{"n":{"t":"hello \"you\"","id":"019ac4b2-0000-7000-8000-000000000000"}}}`, []string{
			`subscription { n: onNotificationReceived(userName: "a") { t: text id } }`,
			`subscription { n: onNotificationReceived(userName: "a") { ...on Notification { t: text } id } }`,
		}, nil},
		{`{"data":{"onNotificationReceived":{"text":"hello \"you\"","id":"019ac4b2-0000-7000-8000-000000000000"}}}`, []string{
			`subscription { onNotificationReceived(userName: "a") { text id } }`, // field order is part of the shape
		}, nil},
	}
	keys := map[string]int{}
	var shapes []*graph.Shape
	for g, group := range groups {
		for _, q := range group.queries {
			s := open(q, group.vars)
			shapes = append(shapes, s)
			if other, seen := keys[s.Key()]; seen && other != g {
				t.Fatalf("%s: shape of group %d, want %d", q, other, g)
			}
			keys[s.Key()] = g
			if got := string(s.Render(m)); got != group.want {
				t.Fatalf("%s rendered\n%s, want\n%s", q, got, group.want)
			}
			if !json.Valid(s.Render(m)) {
				t.Fatalf("%s: invalid JSON", q)
			}
		}
	}
	if len(keys) != len(groups) || n.Shapes() != len(groups) {
		t.Fatalf("%d keys, %d shapes, want %d", len(keys), n.Shapes(), len(groups))
	}
	for _, s := range shapes {
		s.Release()
	}
	if n.Shapes() != 0 {
		t.Fatalf("%d shapes left after every subscription released its own", n.Shapes())
	}
}

func TestOpenErrors(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &graph.Resolver{Audience: audience{}}
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: r})
	n := graph.NewNotifications(schema, r, nil, nil)
	exec := gqlserve.NewExecutor(schema, nil, true, log)
	ctx := graphql.StartOperationTrace(context.Background())
	opCtx, _ := exec.CreateOperationContext(ctx, &graphql.RawParams{Query: `subscription { onNotificationReceived(userName: "") { id } }`})
	f := graphql.CollectFields(opCtx, opCtx.Operation.SelectionSet, []string{"Subscription"})
	if _, _, _, err := n.Open(ctx, opCtx, f[0]); err == nil {
		t.Fatal("the audience's refusal was not returned")
	}
	if n.Shapes() != 0 {
		t.Fatal("a refused subscription holds a shape")
	}
}

// BenchmarkRender: one execution of a typical selection for one notice.
func BenchmarkRender(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &graph.Resolver{Audience: audience{}}
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: r})
	exec := gqlserve.NewExecutor(schema, nil, true, log)
	n := graph.NewNotifications(schema, r, gqlserve.PresentError(log), gqlserve.Recover(log))
	ctx := graphql.StartOperationTrace(context.Background())
	opCtx, errs := exec.CreateOperationContext(ctx, &graphql.RawParams{Query: `subscription { onNotificationReceived(userName: "a") { id text timestamp } }`})
	if errs != nil {
		b.Fatal(errs)
	}
	f := graphql.CollectFields(opCtx, opCtx.Operation.SelectionSet, []string{"Subscription"})
	_, shape, _, err := n.Open(ctx, opCtx, f[0])
	if err != nil {
		b.Fatal(err)
	}
	m := &wire.Message{V: 1, ID: "019ac4b2-0000-7000-8000-000000000000", Text: "Your order has shipped", TS: 1_700_000_000_123, Scope: wire.ScopePerson}
	b.ReportAllocs()
	for b.Loop() {
		shape.Render(m)
	}
}
