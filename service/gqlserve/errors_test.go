package gqlserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/oshirase/oshirase/service/errkind"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/wire"
)

func TestErrorForGivesEveryErrorACode(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	long := gqlerror.Errorf("Unexpected String %q", strings.Repeat("é", 400))
	for _, tc := range []struct {
		name     string
		err      error
		code     string
		message  string // the message, or a part of it
		notInMsg string
	}{
		{"parse error keeps its code", &gqlerror.Error{Message: "Expected Name", Extensions: map[string]any{"code": errkind.CodeParseFailed}}, errkind.CodeParseFailed, "Expected Name", ""},
		{"a long quote is cut", long, errkind.CodeBadRequest, "Unexpected String", strings.Repeat("é", 200)},
		{"gqlgen's request errors get a code", gqlerror.Errorf("could not get json request body"), errkind.CodeBadRequest, "could not get json request body", ""},
		{"bad input", fmt.Errorf("%w: to is empty", errkind.ErrBadInput), errkind.CodeBadUserInput, "to is empty", ""},
		{"invalid name", fmt.Errorf("%w: userName is empty", wire.ErrInvalidName), errkind.CodeBadUserInput, "userName is empty", ""},
		{"unauthenticated", fmt.Errorf("%w: token expired", auth.ErrUnauthenticated), errkind.CodeUnauthenticated, "token expired", ""},
		{"forbidden", fmt.Errorf("%w: not your tenant", errkind.ErrForbidden), errkind.CodeForbidden, "not your tenant", ""},
		{"unavailable", fmt.Errorf("publisher: redis 10.0.0.7:6379: %w", errkind.ErrUnavailable), errkind.CodeUnavailable, "retry", "10.0.0.7"},
		{"anything else", errors.New("dial tcp 10.0.0.7:6379: refused"), errkind.CodeInternal, "internal error", "10.0.0.7"},
		{"wrapped by gqlgen", wrapped(fmt.Errorf("%w: to is empty", errkind.ErrBadInput)), errkind.CodeBadUserInput, "to is empty", "sendNotification"},
		// gqlgen's answer to __schema or __type without introspection,
		// wrapped as the executor hands it over.
		{"introspection switched off", gqlerror.WrapPath(nil, errors.New("introspection disabled")), errkind.CodeForbidden, "introspection is disabled", ""},
		{"cursor expired", fmt.Errorf("bus: %w", errkind.ErrCursorExpired), errkind.CodeCursorExpired, "fetch the list again", ""},
		{"rate limited", fmt.Errorf("%w: too many connections", errkind.ErrRateLimited), errkind.CodeRateLimited, "too many connections", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ErrorFor(context.Background(), tc.err, log)
			if e.Extensions["code"] != tc.code {
				t.Errorf("code %v, want %s", e.Extensions["code"], tc.code)
			}
			if !strings.Contains(e.Message, tc.message) || tc.notInMsg != "" && strings.Contains(e.Message, tc.notInMsg) {
				t.Errorf("message %q", e.Message)
			}
			if len(e.Message) > maxQuotedMessage || !utf8.ValidString(e.Message) {
				t.Errorf("message of %d bytes, valid UTF-8 %v", len(e.Message), utf8.ValidString(e.Message))
			}
		})
	}
}

// wrapped is err as gqlgen hands a resolver's error to the presenter: its
// Error() starts with the position and path.
func wrapped(err error) error {
	e := gqlerror.WrapPath(ast.Path{ast.PathName("sendNotification")}, err)
	e.Locations = []gqlerror.Location{{Line: 1, Column: 10}}
	return e
}

// LimitBody answers a body over MaxBodyBytes with 413 and counts it; it
// answers a body that is no GraphQL request with 400, and passes the rest.
func TestLimitBody(t *testing.T) {
	var served string
	limits := NewLimits(LimitsConfig{MaxBodyBytes: 64, Logger: slog.New(slog.DiscardHandler)})
	h := limits.LimitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		served = string(b)
	}))
	for _, tc := range []struct {
		name, contentType, body string
		chunked                 bool
		status                  int
		code                    string
	}{
		{"a request within the limit", "application/json", `{"query":"{ ok }"}`, false, 200, ""},
		{"over the limit", "application/json", `{"query":"` + strings.Repeat("x", 64) + `"}`, false, 413, errkind.CodeRequestTooLarge},
		{"over the limit, chunked", "application/json", `{"query":"` + strings.Repeat("x", 64) + `"}`, true, 413, errkind.CodeRequestTooLarge},
		{"not JSON", "application/json", `{{{marker`, false, 400, errkind.CodeBadRequest},
		{"not a request object", "application/json; charset=utf-8", `{"query":["marker"]}`, false, 400, errkind.CodeBadRequest},
		{"another content type passes", "text/plain", `{{{`, false, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served = ""
			before := limits.TooLarge()
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body)
			}
			req := httptest.NewRequest(http.MethodPost, "/graphql", body)
			req.Header.Set("Content-Type", tc.contentType)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if counted := limits.TooLarge() - before; counted != map[bool]int64{true: 1}[tc.status == 413] {
				t.Fatalf("counted %d bodies too large", counted)
			}
			if tc.code == "" {
				if served != tc.body {
					t.Fatalf("served %q, want the body %q", served, tc.body)
				}
				return
			}
			if !strings.Contains(rec.Body.String(), `"code":"`+tc.code+`"`) || strings.Contains(rec.Body.String(), "marker") || served != "" {
				t.Fatalf("answer %s (served %q)", rec.Body, served)
			}
		})
	}
}
