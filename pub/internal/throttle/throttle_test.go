package throttle

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/ratelimit"
)

var schema = gqlparser.MustLoadSchema(&ast.Source{Input: `
type Query { ok: Boolean }
type Mutation { publish(text: String): Boolean publishBatch(inputs: [String!]!): Boolean }`})

func operation(t *testing.T, query string, vars map[string]any) *graphql.OperationContext {
	t.Helper()
	doc, errs := gqlparser.LoadQuery(schema, query)
	if errs != nil {
		t.Fatal(errs)
	}
	return &graphql.OperationContext{RawQuery: query, Doc: doc, Operation: doc.Operations[0], Variables: vars}
}

// take runs the extension for query under key and returns the error code
// ("" when allowed) and the ticket's wait.
func take(t *testing.T, th *Throttle, key, query string) (string, time.Duration) {
	t.Helper()
	return takeWith(t, th, key, query, map[string]any{})
}

// takeWith is take with the request's variables.
func takeWith(t *testing.T, th *Throttle, key, query string, vars map[string]any) (string, time.Duration) {
	t.Helper()
	tk := &ticket{key: key}
	err := th.MutateOperationContext(context.WithValue(context.Background(), ticketKey{}, tk), operation(t, query, vars))
	if err == nil {
		return "", tk.retry
	}
	code, _ := err.Extensions["code"].(string)
	return code, tk.retry
}

// One token per publish, all or none; queries and __typename take none; a
// credential at its limit does not stop another.
func TestTokensPerPublish(t *testing.T) {
	th := New(Config{Rate: 0.01, Burst: 3})
	if code, _ := take(t, th, "a", `mutation { x: publish(text: "1") y: publish(text: "2") z: publish @skip(if: true) __typename }`); code != "" {
		t.Fatalf("2 of 3: %s", code)
	}
	for range 5 {
		if code, _ := take(t, th, "a", `{ ok }`); code != "" {
			t.Fatalf("a query was limited: %s", code)
		}
	}
	code, retry := take(t, th, "a", `mutation { x: publish(text: "1") y: publish(text: "2") }`)
	if code != errkind.CodeRateLimited || retry <= 0 {
		t.Fatalf("2 more with 1 left: code %q retry %s, want RATE_LIMITED with a wait", code, retry)
	}
	if code, _ := take(t, th, "a", `mutation { publish(text: "1") }`); code != "" {
		t.Fatalf("the last token was taken by a refused request: %s", code)
	}
	if code, _ := take(t, th, "b", `mutation { x: publish(text: "1") y: publish(text: "2") z: publish(text: "3") }`); code != "" {
		t.Fatalf("another credential limited: %s", code)
	}
	if code, retry := take(t, th, "c", `mutation { a: publish b: publish c: publish d: publish }`); code != errkind.CodeRateLimited || retry != time.Second {
		t.Fatalf("4 in one request over a burst of 3: %q %s", code, retry)
	}
	if th.Refused() != 2 {
		t.Fatalf("refused %d, want 2", th.Refused())
	}
}

// A publishBatch takes a token per input, written in the document or
// sent as a variable; a single input where the list is expected is one.
func TestBatchTakesATokenPerInput(t *testing.T) {
	th := New(Config{Rate: 0.01, Burst: 5})
	const batch = `mutation($in: [String!]!) { publishBatch(inputs: $in) }`
	if code, _ := take(t, th, "a", `mutation { publishBatch(inputs: ["1", "2", "3"]) }`); code != "" {
		t.Fatalf("3 of 5: %s", code)
	}
	if code, retry := takeWith(t, th, "a", batch, map[string]any{"in": []any{"4", "5", "6"}}); code != errkind.CodeRateLimited || retry <= 0 {
		t.Fatalf("3 more with 2 left: code %q retry %s, want RATE_LIMITED with a wait", code, retry)
	}
	if code, _ := takeWith(t, th, "a", batch, map[string]any{"in": "4"}); code != "" {
		t.Fatalf("one input, coerced to a list, with 2 left: %s", code)
	}
	if code, _ := take(t, th, "a", `mutation { x: publish(text: "1") y: publishBatch(inputs: []) }`); code != "" {
		t.Fatalf("one publish and an empty batch with 1 left: %s", code)
	}
	if code, _ := take(t, th, "a", `mutation { publish(text: "1") }`); code != errkind.CodeRateLimited {
		t.Fatalf("none left: %q", code)
	}
	if code, _ := take(t, th, "b", `mutation { publishBatch(inputs: "5") }`); code != "" {
		t.Fatalf("one input written where the list is: %s", code)
	}
	if code, retry := takeWith(t, th, "c", batch, map[string]any{"in": []any{"1", "2", "3", "4", "5", "6"}}); code != errkind.CodeRateLimited || retry != time.Second {
		t.Fatalf("6 inputs over a burst of 5: %q %s", code, retry)
	}
}

func TestCallerKeys(t *testing.T) {
	th := New(Config{Rate: 1, Burst: 1})
	req := func(token string, id auth.Identity) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/query", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		return r.WithContext(auth.WithIdentity(r.Context(), id))
	}
	acme := auth.Identity{Tenant: "acme", Publisher: true}
	k1, k2 := th.caller(req("key-one-0123456789", acme)), th.caller(req("key-two-0123456789", acme))
	if k1 == k2 {
		t.Fatal("two API keys of one tenant share a bucket")
	}
	exp := time.Now().Add(time.Hour)
	tok := func(user string) string {
		return th.caller(req("token-"+user+time.Now().String(), auth.Identity{Tenant: "acme", User: user, Publisher: true, ExpiresAt: exp}))
	}
	if tok("billing") != tok("billing") || tok("billing") == tok("shipping") {
		t.Fatal("tokens: the same subject must share a bucket, others not")
	}
	proxies, _ := ratelimit.ParseProxies([]string{"10.0.0.0/8"})
	anon := New(Config{Rate: 1, Burst: 1, Anonymous: true, Proxies: proxies})
	r := httptest.NewRequest(http.MethodPost, "/query", nil)
	r.RemoteAddr = "10.0.0.5:1234"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	if got := anon.caller(r); got != "addr 203.0.113.9" {
		t.Fatalf("anonymous caller %q", got)
	}
}

// A refused request's status becomes 429 with Retry-After; others keep
// theirs.
func TestStatusWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &statusWriter{ResponseWriter: rec, t: &ticket{retry: 1500 * time.Millisecond}}
	w.WriteHeader(http.StatusUnprocessableEntity)
	_, _ = w.Write([]byte("{}"))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("refused: %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	rec = httptest.NewRecorder()
	w = &statusWriter{ResponseWriter: rec, t: &ticket{}}
	_, _ = w.Write([]byte("{}"))
	if rec.Code != http.StatusOK || rec.Header().Get("Retry-After") != "" {
		t.Fatalf("allowed: %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}
