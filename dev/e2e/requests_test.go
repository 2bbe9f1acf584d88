package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/harness"
)

// Issue 14, defect 5: a request refused before GraphQL runs gets an HTTP
// status and a GraphQL error with a code, on both services, over POST and
// SSE, and nothing of the request comes back: a body over the limit (pub's
// MAX_BODY_BYTES, sub's READ_LIMIT) gets 413, a body that is not a GraphQL
// request 400, another method 405, another content type 415, a foreign
// origin 403.
func TestRefusedRequestsCarryACode(t *testing.T) {
	r := harness.StartRedis(t)
	const origin = "http://app.test"
	pub := harness.StartPub(t, r, "MAX_BODY_BYTES=8KiB", "ALLOWED_ORIGINS="+origin)
	sub := harness.StartSub(t, r, "READ_LIMIT=1KiB", "ALLOWED_ORIGINS="+origin)
	const marker = "s3cr3t-marker"
	padded := func(n int) []byte { // a valid GraphQL request of n bytes or more
		b, _ := json.Marshal(map[string]any{"query": "{ ok }", "variables": map[string]any{"pad": marker + strings.Repeat("x", n)}})
		return b
	}
	jsonType := []string{"Content-Type", "application/json"}
	sse := []string{"Content-Type", "application/json", "Accept", "text/event-stream"}
	for _, svc := range []struct {
		s     *harness.Service
		path  string
		limit int
	}{{pub, "/query", 8 << 10}, {sub, "/graphql", 1 << 10}} {
		url := svc.s.URL + svc.path
		t.Run(svc.s.Name, func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				method string
				body   io.Reader
				header []string
				status int
				code   string
			}{
				{"not JSON", http.MethodPost, strings.NewReader("{{{" + marker), jsonType, 400, "BAD_REQUEST"},
				{"not JSON over SSE", http.MethodPost, strings.NewReader("{{{" + marker), sse, 400, "BAD_REQUEST"},
				{"query not a string", http.MethodPost, strings.NewReader(`{"query": 5, "operationName": "` + marker + `"}`), jsonType, 400, "BAD_REQUEST"},
				{"a batch", http.MethodPost, strings.NewReader(`[{"query": "{ ok }"}, "` + marker + `"]`), jsonType, 400, "BAD_REQUEST"},
				{"over the limit", http.MethodPost, bytes.NewReader(padded(svc.limit)), jsonType, 413, "REQUEST_TOO_LARGE"},
				{"over the limit over SSE", http.MethodPost, bytes.NewReader(padded(svc.limit)), sse, 413, "REQUEST_TOO_LARGE"},
				// No Content-Length: the limit is found while reading.
				{"over the limit, chunked", http.MethodPost, io.MultiReader(bytes.NewReader(padded(svc.limit))), jsonType, 413, "REQUEST_TOO_LARGE"},
				{"over the limit over SSE, chunked", http.MethodPost, io.MultiReader(bytes.NewReader(padded(svc.limit))), sse, 413, "REQUEST_TOO_LARGE"},
				{"another content type", http.MethodPost, strings.NewReader(`{"query": "{ ok }"}`), []string{"Content-Type", "text/plain"}, 415, "BAD_REQUEST"},
				{"GET", http.MethodGet, nil, nil, 405, "BAD_REQUEST"},
				{"PUT", http.MethodPut, strings.NewReader(`{"query": "{ ok }"}`), jsonType, 405, "BAD_REQUEST"},
				{"foreign origin", http.MethodPost, strings.NewReader(`{"query": "{ ok }"}`), append([]string{"Origin", "http://evil.test"}, jsonType...), 403, "FORBIDDEN"},
				{"operationName of no operation", http.MethodPost, strings.NewReader(`{"query": "query A { ok }", "operationName": "B` + marker + `"}`), jsonType, 200, "GRAPHQL_VALIDATION_FAILED"},
				{"a long string in broken GraphQL", http.MethodPost, strings.NewReader(`{"query": "{ \"` + strings.Repeat("y", 300) + marker + `\" }"}`), jsonType, 200, "GRAPHQL_PARSE_FAILED"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					a := request(t, tc.method, url, tc.body, tc.header...)
					expectRefusal(t, a, tc.status, tc.code, marker)
					if tc.status == http.StatusMethodNotAllowed && !strings.Contains(a.Header.Get("Allow"), "POST") {
						t.Fatalf("405 without Allow: POST: %v", a.Header)
					}
				})
			}
			// Within the limit, the same request is served.
			a := request(t, http.MethodPost, url, bytes.NewReader(padded(svc.limit-200)), jsonType...)
			if a.Status != http.StatusOK || !bytes.Contains(a.Body, []byte(`"ok":true`)) {
				t.Fatalf("a request within the limit: %d %.300s", a.Status, a.Body)
			}
		})
	}
}

// Every line either service writes is in its log format, also what
// libraries print on their own: gqlgen's transports (they wrote through
// the standard logger) and go-redis (its own logger, while Redis is away).
func TestEveryLogLineIsStructured(t *testing.T) {
	r := harness.StartRedis(t)
	pub := harness.StartPub(t, r, "LOG_FORMAT=json")
	sub := harness.StartSub(t, r, "LOG_FORMAT=json", "READ_LIMIT=1KiB")
	sse := []string{"Content-Type", "application/json", "Accept", "text/event-stream"}
	big, _ := json.Marshal(map[string]any{"query": "{ ok }", "variables": map[string]any{"pad": strings.Repeat("x", 2<<10)}})
	request(t, http.MethodPost, sub.URL+"/graphql", io.MultiReader(bytes.NewReader(big)), sse...)
	request(t, http.MethodPost, sub.URL+"/graphql", strings.NewReader("{{{"), sse...)
	request(t, http.MethodPost, pub.URL+"/query", strings.NewReader("{{{"), "Content-Type", "application/json")

	r.Stop()
	if _, err := pub.Send("nina", "while Redis is away"); err == nil {
		t.Fatal("a publish without Redis succeeded")
	}
	eventually(t, 20*time.Second, "go-redis to report its failed dials", func() bool {
		return strings.Contains(pub.Log(), "failed to dial")
	})
	r.Start()
	sub.WaitReady(20 * time.Second)

	for _, s := range []*harness.Service{pub, sub} {
		for _, line := range strings.Split(strings.TrimSpace(s.Log()), "\n") {
			var rec struct{ Level, Msg string }
			if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Level == "" || rec.Msg == "" {
				t.Errorf("%s wrote a line that is not a JSON log record: %s", s.Name, line)
			}
		}
	}
}
