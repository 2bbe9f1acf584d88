package server

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A refused stream is logged, but a flood of refusals is not: one line a
// second per status, the next one saying how many were held back; other
// requests are not logged at all.
func TestLogRefusedThrottlesPerStatus(t *testing.T) {
	var out bytes.Buffer
	h := logRefused(slog.New(slog.NewTextHandler(&out, nil)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, _ := strconv.Atoi(r.URL.Query().Get("status"))
		w.WriteHeader(status)
	}))
	upgrade := func(status int) {
		r := httptest.NewRequest(http.MethodGet, "/graphql?status="+strconv.Itoa(status), nil)
		r.Header.Set("Upgrade", "websocket")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	for range 5 {
		upgrade(http.StatusServiceUnavailable)
	}
	upgrade(http.StatusForbidden)
	upgrade(http.StatusSwitchingProtocols)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/graphql?status=400", nil)) // not a stream
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "status=503") || !strings.Contains(lines[1], "status=403") {
		t.Fatalf("logged:\n%s\nwant one line for 503, one for 403", out.String())
	}
	time.Sleep(1100 * time.Millisecond)
	out.Reset()
	upgrade(http.StatusServiceUnavailable)
	if !strings.Contains(out.String(), "status=503") || !strings.Contains(out.String(), "not_logged_since_last=4") {
		t.Fatalf("a second later: %q, want the 503 with the 4 held back", out.String())
	}
}
