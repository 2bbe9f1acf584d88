package gqlserve

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/service/errkind"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
)

func repeat(n int, f func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(f(i))
		b.WriteByte(' ')
	}
	return b.String()
}

func TestOperationLimits(t *testing.T) {
	nested := "{ ...F0 }" + repeat(40, func(i int) string {
		return fmt.Sprintf("fragment F%d on Query { ...F%d ...F%d }", i, i+1, i+1)
	}) + "fragment F40 on Query { ok }"
	cyclic := "{ ...F0 }" + repeat(40, func(i int) string {
		return fmt.Sprintf("fragment F%d on Query { ...F%d ...F%d ...F0 }", i, i+1, i+1)
	}) + "fragment F40 on Query { ...F0 }"
	for _, tc := range []struct {
		name, query, operationName, wantCode string
	}{
		{"introspection", introspectionQuery, "", ""},
		{"a field 16 times", "{" + strings.Repeat(" ok", 16) + " }", "", ""},
		{"overlapping fragments", "{ ok ...A ...B } fragment A on Query { ok } fragment B on Query { ok }", "", ""},
		{"syntax error", "{ ok", "", ""}, // gqlgen's parser reports it
		{"known operationName", "query A { ok } query B { ok }", "B", ""},
		{"a field 17 times", "{" + strings.Repeat(" ok", 17) + " }", "", errkind.CodeTooComplex},
		{"a field 17 times through fragments", "{ ...A ...B } fragment A on Query { " + strings.Repeat("ok ", 9) + "} fragment B on Query { " + strings.Repeat("ok ", 8) + "}", "", errkind.CodeTooComplex},
		{"a nested field 17 times", "{" + strings.Repeat(" a: __schema { types { name } }", 4) + strings.Repeat(" a: __schema { b: types { name } }", 13) + " }", "", errkind.CodeTooComplex},
		{"nested fields merged under one key", "{" + strings.Repeat(" a: __schema { types { name name name name } }", 5) + " }", "", errkind.CodeTooComplex},
		{"601 selections", "{" + repeat(601, func(i int) string { return fmt.Sprintf("a%d: ok", i) }) + "}", "", errkind.CodeTooComplex},
		{"1001 tokens", "{" + strings.Repeat(" ok", 999) + " }", "", errkind.CodeTooComplex},
		{"fragments spreading each other twice", nested, "", errkind.CodeTooComplex},
		{"cycles spreading each other twice", cyclic, "", errkind.CodeTooComplex},
		{"unknown operationName", "query A { ok }", "B", errkind.CodeValidationFailed},
		{"16 deep", deep(16), "", ""},
		{"17 deep", deep(17), "", errkind.CodeTooComplex},
		{"17 deep through fragments and inline fragments", "{ __schema { ...A } } fragment A on __Schema { ... on __Schema { types { ...B } } } fragment B on __Type { " + strings.Repeat("ofType { ", 14) + "name" + strings.Repeat(" }", 14) + " }", "", errkind.CodeTooComplex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := operationLimits{maxTokens: MaxQueryTokens, maxSelections: MaxQuerySelections, maxRepeated: MaxRepeatedField, maxDepth: MaxQueryDepth,
				validated: lru.New[*ast.QueryDocument](10)}
			start := time.Now()
			err := l.MutateOperationParameters(context.Background(), &graphql.RawParams{Query: tc.query, OperationName: tc.operationName})
			if took := time.Since(start); took > time.Second {
				t.Errorf("took %s", took)
			}
			switch {
			case tc.wantCode == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantCode != "" && (err == nil || err.Extensions["code"] != tc.wantCode):
				t.Fatalf("got %v, want code %s", err, tc.wantCode)
			case err != nil && strings.Contains(err.Message, tc.operationName+" ") && tc.operationName != "":
				t.Fatalf("the message repeats operationName: %s", err.Message)
			}
		})
	}
}

// A document gqlgen has validated and cached passes without being looked
// at again.
func TestOperationLimitsTrustValidatedDocuments(t *testing.T) {
	cache := lru.New[*ast.QueryDocument](10)
	q := "{" + strings.Repeat(" ok", 17) + " }"
	cache.Add(context.Background(), q, &ast.QueryDocument{})
	l := operationLimits{maxTokens: MaxQueryTokens, maxSelections: MaxQuerySelections, maxRepeated: MaxRepeatedField, maxDepth: MaxQueryDepth, validated: cache}
	if err := l.MutateOperationParameters(context.Background(), &graphql.RawParams{Query: q}); err != nil {
		t.Fatal(err)
	}
}

// deep is a document whose fields nest n deep (n ≥ 2): __schema, then
// types and ofType down to depth n.
func deep(n int) string {
	q := "{ __schema { types { " + strings.Repeat("ofType { ", n-3) + "name" + strings.Repeat(" }", n-3) + " } } }"
	return q
}
