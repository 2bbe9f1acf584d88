package gqlserve

import (
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// testSchema has the shape of sub's.
var testSchema = gqlparser.MustLoadSchema(&ast.Source{Input: `
type Query { ok: Boolean! }
type Notification { id: ID! text: String! }
type Subscription { onNotificationReceived(userName: String!): Notification! }
`})

// introspectionQuery is GraphiQL's, with every option of graphql-js's
// getIntrospectionQuery on and types nine levels deep.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    description
    queryType { name kind }
    mutationType { name kind }
    subscriptionType { name kind }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL isOneOf
  fields(includeDeprecated: true) { name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue isDeprecated deprecationReason }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } } }`

func TestSingleRootField(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		valid       bool
	}{
		{"one root field", `subscription { onNotificationReceived(userName: "a") { id } }`, true},
		{"one, through a fragment", `subscription { ...F } fragment F on Subscription { onNotificationReceived(userName: "a") { id } }`, true},
		{"the same field twice, merged", `subscription { onNotificationReceived(userName: "a") { id } onNotificationReceived(userName: "a") { text } }`, true},
		{"@skip below the root", `subscription { onNotificationReceived(userName: "a") { id @skip(if: true) text } }`, true},
		{"queries are not affected", `{ a: ok b: ok }`, true},
		{"two aliases", `subscription { a: onNotificationReceived(userName: "a") { id } b: onNotificationReceived(userName: "b") { id } }`, false},
		{"an alias and the name", `subscription { onNotificationReceived(userName: "a") { id } b: onNotificationReceived(userName: "a") { id } }`, false},
		{"an alias in an inline fragment", `subscription { onNotificationReceived(userName: "a") { id } ... { b: onNotificationReceived(userName: "a") { id } } }`, false},
		{"__typename", `subscription { onNotificationReceived(userName: "a") { id } __typename }`, false},
		{"only __typename", `subscription { __typename }`, false},
		{"@skip on the root field", `subscription { onNotificationReceived(userName: "a") @skip(if: false) { id } }`, false},
		{"@include on a root spread", `subscription { ...F @include(if: true) } fragment F on Subscription { onNotificationReceived(userName: "a") { id } }`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := gqlparser.LoadQueryWithRules(testSchema, tc.query, validationRules())
			if tc.valid && len(errs) != 0 {
				t.Fatalf("refused: %v", errs)
			}
			if !tc.valid && len(errs) == 0 {
				t.Fatal("accepted")
			}
		})
	}
	if _, errs := gqlparser.LoadQueryWithRules(testSchema, introspectionQuery, validationRules()); len(errs) != 0 {
		t.Fatalf("introspection: %v", errs)
	}
}
