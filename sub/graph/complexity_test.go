package graph_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"

	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/sub/graph"
	"github.com/oshirase/oshirase/sub/internal/recent"
)

// A page of notifications costs what it selects once per notice it may
// hold: first (default 20, at most 100), by the Lister's own rule.
func TestNotificationsCostTheirPage(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{
		Resolvers:  &graph.Resolver{Audience: audience{}},
		Complexity: graph.Complexity(recent.New(recent.Config{})),
	})
	log := slog.New(slog.DiscardHandler)
	exec := gqlserve.NewExecutor(schema, gqlserve.NewLimits(gqlserve.LimitsConfig{Logger: log}), true, log)
	const wide = `edges { cursor node { id text timestamp scope cursor } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }` // 13
	for _, tc := range []struct {
		args string
		vars map[string]any
		want int
	}{
		{`(userName: "bob", first: 1)`, nil, 13},
		{`(userName: "bob")`, nil, 20 * 13},
		{`(userName: "bob", first: 100)`, nil, 100 * 13},
		{`(userName: "bob", first: 1000)`, nil, 100 * 13}, // the Lister serves at most 100
		{`(userName: "bob", first: -1)`, nil, 13},         // refused by the resolver
		{`(userName: "bob", first: $n)`, map[string]any{"n": 7}, 7 * 13},
	} {
		q := `{ notifications` + tc.args + ` { ` + wide + ` } }`
		if tc.vars != nil {
			q = `query($n: Int) ` + q
		}
		ctx := graphql.StartOperationTrace(context.Background())
		opCtx, errs := exec.CreateOperationContext(ctx, &graphql.RawParams{Query: q, Variables: tc.vars})
		if errs != nil {
			t.Fatalf("%s: %v", tc.args, errs)
		}
		if got := complexity.Calculate(ctx, schema, opCtx.Operation, opCtx.Variables); got != tc.want {
			t.Errorf("%s: complexity %d, want %d", tc.args, got, tc.want)
		}
	}
}
