package gqlserve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/oshirase/oshirase/service/errkind"
)

// fuzzSchema is a small executable schema for the POST transport: queries
// answer {"ok": true}; a subscription would stream, which plain POST
// refuses before it runs.
func fuzzSchema() graphql.ExecutableSchema {
	schema := gqlparser.MustLoadSchema(&ast.Source{Input: `
		type Query { ok: Boolean! echo(s: String!, n: Int): String! }
		type Subscription { ok: Boolean! }
	`})
	return &graphql.ExecutableSchemaMock{
		ExecFunc: func(ctx context.Context) graphql.ResponseHandler {
			if graphql.GetOperationContext(ctx).Operation.Operation != ast.Query {
				return graphql.OneShot(graphql.ErrorResponse(ctx, "only queries run here"))
			}
			return graphql.OneShot(&graphql.Response{Data: []byte(`{"ok":true}`)})
		},
		SchemaFunc: func() *ast.Schema { return schema },
		ComplexityFunc: func(_ context.Context, _, _ string, child int, _ map[string]any) (int, bool) {
			return child + 1, true
		},
	}
}

// fuzzAccepts are the Accept headers a fuzz input picks from.
var fuzzAccepts = []string{"", "application/json", "application/graphql-response+json", "*/*", "text/html",
	"application/graphql-response+json, application/json;q=0.9"}

const fuzzMaxBody = 512

// FuzzPOST sends fuzzed bodies through LimitBody and the POST transport
// (GraphQL over HTTP): a body over the limit is a 413 REQUEST_TOO_LARGE, a
// body that is not a GraphQL request a 400 BAD_REQUEST, a content type
// other than JSON a 415; anything else is a response of the media type
// asked for — with data and 200 when the operation ran, or a request error
// (errors, no data; 200 to application/json, 400 to
// application/graphql-response+json). Every error carries a code; nothing
// panics.
func FuzzPOST(f *testing.F) {
	for _, tc := range []struct {
		body, contentType string
		accept            uint8
	}{
		{`{"query":"{ ok }"}`, "application/json", 0},
		{`{"query":"query Q($s:String!){ echo(s:$s) }","variables":{"s":"x"},"operationName":"Q"}`, "application/json; charset=utf-8", 2},
		{`{"query":"query Q($s:String!){ echo(s:$s) }","variables":{"s":1}}`, "application/json", 2},
		{`{"query":"query($n:Int){ echo(s:\"a\",n:$n) }","variables":{"n":12345678901234567890}}`, "application/json", 1},
		{`{"query":"subscription { ok }"}`, "application/json", 5},
		{`{"query":"{ ok"}`, "application/json", 3},
		{`{"query":"{ nope }","extensions":{"persistedQuery":{"version":1,"sha256Hash":"00"}}}`, "application/json", 4},
		{`{"query":"query A { ok } query B { ok }","operationName":"C"}`, "application/json", 1},
		{`{"query":"{ ok }"} {"query":"{ nope }"}`, "application/json", 0},
		{`{"query":1}`, "application/json", 0},
		{`null`, "application/json", 2},
		{`[{"query":"{ ok }"}]`, "application/json", 0},
		{`{"query":"{ ok }"}`, "text/plain", 0},
		{`{"query":"{ ok }"}`, "application/graphql", 0},
		{`{"query":"` + strings.Repeat(" ", fuzzMaxBody) + `{ ok }"}`, "application/json", 0},
		{``, "application/json", 0},
	} {
		f.Add([]byte(tc.body), tc.contentType, tc.accept)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	limits := NewLimits(LimitsConfig{MaxBodyBytes: fuzzMaxBody, Logger: log})
	h := limits.LimitBody(NewGraphQL(fuzzSchema(), limits, false, log))
	f.Fuzz(func(t *testing.T, body []byte, contentType string, accept uint8) {
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		acc := fuzzAccepts[int(accept)%len(fuzzAccepts)]
		if acc != "" {
			req.Header.Set("Accept", acc)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		var resp struct {
			Data   *json.RawMessage
			Errors []struct {
				Message    string
				Extensions map[string]any
			}
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &fields); err != nil {
			t.Fatalf("%q: %d %q is not a JSON object", body, rec.Code, rec.Body)
		}
		for k := range fields {
			if k != "data" && k != "errors" && k != "extensions" {
				t.Fatalf("%q: response entry %q: %s", body, k, rec.Body)
			}
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &resp)
		if resp.Data == nil && len(resp.Errors) == 0 {
			t.Fatalf("%q: %d neither data nor errors: %s", body, rec.Code, rec.Body)
		}
		for _, e := range resp.Errors {
			if code, _ := e.Extensions["code"].(string); code == "" {
				t.Fatalf("%q: an error without a code: %s", body, rec.Body)
			}
			if len(e.Message) > 2*maxQuotedMessage {
				t.Fatalf("%q: an error message of %d bytes", body, len(e.Message))
			}
		}
		code := func() string {
			if len(resp.Errors) != 1 {
				return ""
			}
			c, _ := resp.Errors[0].Extensions["code"].(string)
			return c
		}

		// LimitBody decodes a body whose type names JSON, with parameters
		// it cannot read or not; the POST transport takes only a type it
		// reads in full, and the rest get 415.
		mt, _, mtErr := mime.ParseMediaType(contentType)
		params, decoded := decodeRequest(body)
		switch {
		case len(body) > fuzzMaxBody:
			if rec.Code != http.StatusRequestEntityTooLarge || code() != errkind.CodeRequestTooLarge {
				t.Fatalf("%d bytes: %d %s", len(body), rec.Code, rec.Body)
			}
			return
		case mt == "application/json" && !decoded:
			if rec.Code != http.StatusBadRequest || code() != errkind.CodeBadRequest || resp.Data != nil {
				t.Fatalf("%q: not a GraphQL request, answered %d %s", body, rec.Code, rec.Body)
			}
			return
		case mt != "application/json" || mtErr != nil:
			if rec.Code != http.StatusUnsupportedMediaType || code() != errkind.CodeBadRequest {
				t.Fatalf("%q as %q: %d %s", body, contentType, rec.Code, rec.Body)
			}
			return
		}
		media := responseMedia(acc)
		if got := rec.Header().Get("Content-Type"); got != media {
			t.Fatalf("%q (Accept %q): Content-Type %q, want %q", body, acc, got, media)
		}
		switch {
		case resp.Data != nil:
			if rec.Code != http.StatusOK {
				t.Fatalf("%q: data with %d", body, rec.Code)
			}
			if string(*resp.Data) != "null" && !reflect.DeepEqual(json.RawMessage(`{"ok":true}`), *resp.Data) {
				t.Fatalf("%q: data %s", body, *resp.Data)
			}
		case media == mediaGraphQLResponse && rec.Code != http.StatusBadRequest,
			media == mediaJSON && rec.Code != http.StatusOK:
			t.Fatalf("%q: request error answered %d to %s", body, rec.Code, media)
		}
		if q := strings.TrimSpace(params.Query); (q == "{ ok }" || q == "{ok}") && params.OperationName == "" && resp.Data == nil {
			t.Fatalf("%q: a valid query did not run: %d %s", body, rec.Code, rec.Body)
		}
	})
}
