package demo_test

import (
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/oshirase/oshirase/sub/internal/demo"
)

func TestPage(t *testing.T) {
	rec := httptest.NewRecorder()
	demo.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/demo", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	csp := rec.Header().Get("Content-Security-Policy")
	if n := strings.Count(csp, "'sha256-"); n != 2 || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q: want hashes for the inline script and style", csp)
	}
	// Self-contained: no file from anywhere else.
	if m := regexp.MustCompile(`(?i)<(script|link|img)[^>]*(src|href)=`).Find(body); m != nil {
		t.Fatalf("page loads a file: %s", m)
	}
	for _, want := range []string{"graphql-transport-ws", "connection_init", "Authorization", "sendNotification"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page does not mention %q", want)
		}
	}
}
