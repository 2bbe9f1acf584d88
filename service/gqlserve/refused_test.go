package gqlserve

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/oshirase/oshirase/service/errkind"
)

// pagedSchema has a list whose cost is first × what it selects, as sub's
// notifications list has.
func pagedSchema() graphql.ExecutableSchema {
	schema := gqlparser.MustLoadSchema(&ast.Source{Input: `
		type Query { ok: Boolean! items(first: Int): [Item!]! }
		type Item { a: Int! b: Int! next: Item }
	`})
	return &graphql.ExecutableSchemaMock{
		ExecFunc: func(ctx context.Context) graphql.ResponseHandler {
			return graphql.OneShot(&graphql.Response{Data: []byte(`{"ok":true}`)})
		},
		SchemaFunc: func() *ast.Schema { return schema },
		ComplexityFunc: func(_ context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
			if typeName == "Query" && field == "items" {
				if first, err := graphql.UnmarshalInt64(args["first"]); err == nil && args["first"] != nil {
					return int(first) * child, true
				}
				return 20 * child, true // first left out
			}
			return 0, false
		},
	}
}

// Documents over MAX_QUERY_DEPTH and MAX_QUERY_COMPLEXITY (as configured,
// not the defaults) are refused with COMPLEXITY_LIMIT_EXCEEDED, over POST
// and through an executor alike, each counted under its reason; a page's
// cost follows its first argument, a variable too; introspection costs
// nothing.
func TestLimitsRefuseAndCount(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	limits := NewLimits(LimitsConfig{MaxDepth: 4, MaxComplexity: 50, Logger: log})
	h := NewGraphQL(pagedSchema(), limits, true, log)
	exec := NewExecutor(pagedSchema(), limits, true, log)
	nested := "{ ...F0 }" + repeat(40, func(i int) string {
		return fmt.Sprintf("fragment F%d on Query { ...F%d ...F%d }", i, i+1, i+1)
	}) + "fragment F40 on Query { ok }"
	for _, tc := range []struct {
		name, query string
		vars        map[string]any
		reason      string // "" passes
	}{
		{"a page within the complexity", "{ items(first: 10) { a b } }", nil, ""},             // 10 × 2
		{"a page over the complexity", "{ items(first: 30) { a b } }", nil, "complexity"},     // 30 × 2
		{"the default page over the complexity", "{ items { a b c: a } }", nil, "complexity"}, // 20 × 3
		{"first in a variable", "query($n: Int) { items(first: $n) { a b } }", map[string]any{"n": 30}, "complexity"},
		{"first in a variable, within", "query($n: Int) { items(first: $n) { a b } }", map[string]any{"n": 1}, ""},
		{"aliased pages adding up", "{ x: items(first: 20) { a } y: items(first: 20) { a } z: items(first: 20) { a } }", nil, "complexity"},
		{"4 deep", "{ items(first: 1) { next { next { a } } } }", nil, ""},
		{"5 deep", "{ items(first: 1) { next { next { next { a } } } } }", nil, "depth"},
		{"5 deep through a fragment", "{ items(first: 1) { ...N } } fragment N on Item { next { next { next { a } } } }", nil, "depth"},
		{"introspection", "{ __schema { types { name fields { name } } } }", nil, ""},
		{"1001 tokens", "{" + strings.Repeat(" ok", 999) + " }", nil, "tokens"},
		{"640 selections", "{" + repeat(20, func(i int) string { return fmt.Sprintf("p%d: items(first: 1) { ...I }", i) }) + "} fragment I on Item {" +
			repeat(30, func(i int) string { return fmt.Sprintf("x%d: a", i) }) + "}", nil, "selections"},
		{"a field 17 times", "{" + strings.Repeat(" ok", 17) + " }", nil, "repeated_field"},
		// Refused before gqlgen's complexity walk, which would take 2^40
		// steps over it.
		{"fragments spreading each other twice", nested, nil, "repeated_field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, via := range []string{"POST", "executor"} {
				before := limits.Refused(tc.reason)
				start := time.Now()
				var code string
				switch via {
				case "POST":
					body, _ := json.Marshal(map[string]any{"query": tc.query, "variables": tc.vars})
					req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					var resp struct {
						Errors []struct{ Extensions map[string]any }
					}
					if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
						t.Fatalf("%s: %s", via, rec.Body)
					}
					if len(resp.Errors) > 0 {
						code, _ = resp.Errors[0].Extensions["code"].(string)
					}
				case "executor":
					ctx := graphql.StartOperationTrace(context.Background())
					vars := map[string]any{}
					for k, v := range tc.vars {
						vars[k] = v
					}
					_, errs := exec.CreateOperationContext(ctx, &graphql.RawParams{Query: tc.query, Variables: vars})
					if len(errs) > 0 {
						code, _ = errs[0].Extensions["code"].(string)
					}
				}
				if took := time.Since(start); took > time.Second {
					t.Errorf("%s: took %s", via, took)
				}
				if tc.reason == "" {
					if code != "" {
						t.Fatalf("%s: refused with %s", via, code)
					}
					continue
				}
				if code != errkind.CodeTooComplex {
					t.Fatalf("%s: code %q, want %s", via, code, errkind.CodeTooComplex)
				}
				if n := limits.Refused(tc.reason) - before; n != 1 {
					t.Fatalf("%s: counted %d under %s, want 1", via, n, tc.reason)
				}
			}
		})
	}
	if n := limits.Refused("nonsense"); n != 0 {
		t.Fatalf("an unknown reason counts %d", n)
	}
}

// The defaults leave room for GraphiQL's introspection query and for the
// deepest document it needs.
func TestLimitsDefaults(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	exec := NewExecutor(pagedSchema(), NewLimits(LimitsConfig{Logger: log}), true, log)
	for _, q := range []string{introspectionQuery, deep(MaxQueryDepth), "{ items(first: 100) { a b } }"} {
		if _, errs := exec.CreateOperationContext(graphql.StartOperationTrace(context.Background()), &graphql.RawParams{Query: q}); len(errs) > 0 {
			t.Errorf("%.60s…: %v", q, errs)
		}
	}
	if _, errs := exec.CreateOperationContext(graphql.StartOperationTrace(context.Background()), &graphql.RawParams{Query: deep(MaxQueryDepth + 1)}); len(errs) == 0 {
		t.Errorf("%d deep passed", MaxQueryDepth+1)
	}
}
