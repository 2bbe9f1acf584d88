package gqlserve

import "testing"

func TestResponseMedia(t *testing.T) {
	for accept, want := range map[string]string{
		"":                                  mediaJSON,
		"*/*":                               mediaJSON,
		"application/json":                  mediaJSON,
		"application/json; charset=utf-8":   mediaJSON,
		"application/graphql-response+json": mediaGraphQLResponse,
		"application/graphql-response+json, application/json;q=0.9": mediaGraphQLResponse,
		"application/json, application/graphql-response+json":       mediaJSON,
		"text/html, application/*":                                  mediaJSON,
		"text/html":                                                 mediaGraphQLResponse,
		"garbage;;;, application/graphql-response+json":             mediaGraphQLResponse,
	} {
		if got := responseMedia(accept); got != want {
			t.Errorf("Accept %q: %s, want %s", accept, got, want)
		}
	}
}
