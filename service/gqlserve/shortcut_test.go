package gqlserve

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
)

// Shortcut offers serve only what the POST transport would take, decoded
// by LimitBody and without extensions; what serve declines, or is not
// offered, reaches next untouched, body included.
func TestShortcut(t *testing.T) {
	var offered []string
	serve := func(_ context.Context, p *graphql.RawParams) ([]byte, bool) {
		offered = append(offered, p.Query)
		if p.Query == "decline" {
			return nil, false
		}
		return []byte(`{"data":{"q":"` + p.Query + `"}}`), true
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		if r.Body != nil {
			buf := make([]byte, 512)
			n, _ := r.Body.Read(buf)
			b.Write(buf[:n])
		}
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("next:" + b.String()))
	})
	limits := NewLimits(LimitsConfig{})
	h := limits.LimitBody(Shortcut(next, serve))
	cases := []struct {
		name, method, ctype, accept, upgrade, body string
		status                                     int
		want, wantType                             string
	}{
		{"served", "POST", "application/json", "", "", `{"query":"a"}`, 200, `{"data":{"q":"a"}}`, mediaJSON},
		{"served, graphql-response+json", "POST", "application/json; charset=utf-8", mediaGraphQLResponse, "", `{"query":"b"}`, 200, `{"data":{"q":"b"}}`, mediaGraphQLResponse},
		{"declined", "POST", "application/json", "", "", `{"query":"decline"}`, http.StatusTeapot, `next:{"query":"decline"}`, ""},
		{"extensions", "POST", "application/json", "", "", `{"query":"c","extensions":{"persistedQuery":{}}}`, http.StatusTeapot, `next:{"query":"c","extensions":{"persistedQuery":{}}}`, ""},
		{"another content type", "POST", "text/plain", "", "", `{"query":"d"}`, http.StatusTeapot, `next:{"query":"d"}`, ""},
		{"an upgrade", "POST", "application/json", "", "websocket", `{"query":"e"}`, http.StatusTeapot, `next:{"query":"e"}`, ""},
		{"GET", "GET", "", "", "", "", http.StatusTeapot, "next:", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			offered = nil
			r := httptest.NewRequest(c.method, "/graphql", strings.NewReader(c.body))
			if c.ctype != "" {
				r.Header.Set("Content-Type", c.ctype)
			}
			if c.accept != "" {
				r.Header.Set("Accept", c.accept)
			}
			if c.upgrade != "" {
				r.Header.Set("Upgrade", c.upgrade)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status || w.Body.String() != c.want || c.wantType != "" && w.Header().Get("Content-Type") != c.wantType {
				t.Fatalf("%d %q %q, want %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body.String(), c.status, c.wantType, c.want)
			}
			if wantOffered := c.status == 200 || c.name == "declined"; (len(offered) == 1) != wantOffered {
				t.Fatalf("offered to serve: %v", offered)
			}
		})
	}
}
