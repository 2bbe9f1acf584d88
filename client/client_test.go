package client

import (
	"errors"
	"net/http"
	"regexp"
	"testing"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// A key the client makes up is a UUIDv4, new for every call; a key the
// caller gave is kept.
func TestKeyOr(t *testing.T) {
	uuid4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		k := keyOr("")
		if !uuid4.MatchString(k) || seen[k] {
			t.Fatalf("made-up key %q (seen before: %v)", k, seen[k])
		}
		seen[k] = true
	}
	if got := keyOr("order-7"); got != "order-7" {
		t.Fatalf("keyOr(order-7) = %q", got)
	}
}

// What is retried: pub's UNAVAILABLE, a proxy's 5xx and failures with no
// answer at all; never a refusal.
func TestRetryable(t *testing.T) {
	coded := func(code string) error {
		return gqlerror.List{{Message: "m", Extensions: map[string]any{"code": code}}}
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"UNAVAILABLE", coded(CodeUnavailable), true},
		{"BAD_USER_INPUT", coded(CodeBadUserInput), false},
		{"FORBIDDEN", coded(CodeForbidden), false},
		{"401", &graphql.HTTPError{StatusCode: http.StatusUnauthorized, Response: graphql.Response{Errors: gqlerror.List{{Message: "m", Extensions: map[string]any{"code": CodeUnauthenticated}}}}}, false},
		{"413", &graphql.HTTPError{StatusCode: http.StatusRequestEntityTooLarge}, false},
		{"502 from a proxy", &graphql.HTTPError{StatusCode: http.StatusBadGateway}, true},
		{"no answer", errors.New("dial tcp: connection refused"), true},
	} {
		if got := retryable(classify(tc.err)); got != tc.want {
			t.Errorf("%s: retryable %v, want %v", tc.name, got, tc.want)
		}
	}
	var e *Error
	if !errors.As(classify(coded(CodeForbidden)), &e) || e.Code != CodeForbidden || e.Status != http.StatusOK {
		t.Fatalf("classify: %+v", e)
	}
}
