package gqlserve

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oshirase/oshirase/service/errkind"
)

func sha(q string) string {
	h := sha256.Sum256([]byte(q))
	return hex.EncodeToString(h[:])
}

type apqAnswer struct {
	status int
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func (a apqAnswer) code() string {
	if len(a.Errors) == 0 {
		return ""
	}
	c, _ := a.Errors[0].Extensions["code"].(string)
	return c
}

func postAPQ(t *testing.T, h http.Handler, query, hash string, version int) apqAnswer {
	t.Helper()
	body := map[string]any{}
	if query != "" {
		body["query"] = query
	}
	if hash != "" {
		body["extensions"] = map[string]any{"persistedQuery": map[string]any{"version": version, "sha256Hash": hash}}
	}
	b, _ := json.Marshal(body)
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := apqAnswer{status: rec.Code}
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatalf("answer %q: %v", rec.Body, err)
	}
	return a
}

// Apollo's automatic persisted queries: an unknown hash is answered
// PERSISTED_QUERY_NOT_FOUND (a request error: no data), the document sent
// with its hash runs and is kept, then the hash alone runs it; a hash
// that does not match its document, or another protocol version, is
// refused with a code; a document over maxPersistedBytes runs but is not
// kept; the store holds persistedEntries documents.
func TestAutomaticPersistedQueries(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	h := NewGraphQL(pagedSchema(), nil, false, log)
	const q = "{ ok }"

	if a := postAPQ(t, h, "", sha(q), 1); a.status != 200 || a.code() != errkind.CodePersistedQueryNotFound || a.Data != nil {
		t.Fatalf("unknown hash: %d %+v, want 200 PERSISTED_QUERY_NOT_FOUND without data", a.status, a)
	}
	if a := postAPQ(t, h, q, sha(q), 1); a.status != 200 || string(a.Data) != `{"ok":true}` {
		t.Fatalf("document with its hash: %d %+v", a.status, a)
	}
	if a := postAPQ(t, h, "", sha(q), 1); a.status != 200 || string(a.Data) != `{"ok":true}` {
		t.Fatalf("hash alone, once kept: %d %+v", a.status, a)
	}
	if a := postAPQ(t, h, "{ ok ok }", sha(q), 1); a.code() != errkind.CodeBadRequest || a.Data != nil {
		t.Fatalf("a hash of another document: %+v, want %s", a, errkind.CodeBadRequest)
	}
	if a := postAPQ(t, h, q, sha(q), 2); a.code() != errkind.CodeBadRequest || !strings.Contains(a.Errors[0].Message, "APQ version") {
		t.Fatalf("version 2: %+v, want %s", a, errkind.CodeBadRequest)
	}

	big := "{ ok " + strings.Repeat(" ", maxPersistedBytes) + "}"
	if a := postAPQ(t, h, big, sha(big), 1); string(a.Data) != `{"ok":true}` {
		t.Fatalf("a large document with its hash: %+v", a)
	}
	if a := postAPQ(t, h, "", sha(big), 1); a.code() != errkind.CodePersistedQueryNotFound {
		t.Fatalf("a large document's hash alone: %+v, want PERSISTED_QUERY_NOT_FOUND (not kept)", a)
	}

	// The least recently used goes once the store is full.
	for i := range persistedEntries {
		d := "{ ok " + strings.Repeat("__typename ", i%7) + "}" + strings.Repeat(" ", i/7+1)
		if a := postAPQ(t, h, d, sha(d), 1); a.Data == nil {
			t.Fatalf("document %d: %+v", i, a)
		}
	}
	if a := postAPQ(t, h, "", sha(q), 1); a.code() != errkind.CodePersistedQueryNotFound {
		t.Fatalf("after %d other documents: %+v, want the first one gone", persistedEntries, a)
	}
}
