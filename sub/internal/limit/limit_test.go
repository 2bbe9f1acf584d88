package limit

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/ratelimit"
)

func request(addr string, xff ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/graphql", nil)
	r.RemoteAddr = addr + ":40000"
	for _, h := range xff {
		r.Header.Add("X-Forwarded-For", h)
	}
	return r
}

// refusal checks a refused answer: its status, Retry-After and code.
func refusal(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d", w.Code, status)
	}
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	var body struct {
		Errors []struct{ Extensions map[string]any } `json:"errors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 || body.Errors[0].Extensions["code"] != code {
		t.Fatalf("body %s, want one error with code %s", w.Body, code)
	}
}

func TestMaxConnections(t *testing.T) {
	l := New(Config{MaxConnections: 2})
	var leases []*Lease
	for range 2 {
		_, le, ok := l.Admit(httptest.NewRecorder(), request("192.0.2.1"), "")
		if !ok {
			t.Fatal("refused under MAX_CONNECTIONS")
		}
		leases = append(leases, le)
	}
	w := httptest.NewRecorder()
	if _, _, ok := l.Admit(w, request("192.0.2.1"), ""); ok {
		t.Fatal("a third connection admitted at MAX_CONNECTIONS=2")
	}
	refusal(t, w, http.StatusServiceUnavailable, errkind.CodeUnavailable)
	leases[0].Release()
	leases[0].Release() // a second release gives back nothing more
	if _, _, ok := l.Admit(httptest.NewRecorder(), request("192.0.2.1"), ""); !ok {
		t.Fatal("refused after a connection ended")
	}
	if _, _, ok := l.Admit(httptest.NewRecorder(), request("192.0.2.1"), ""); ok {
		t.Fatal("a double release freed two slots")
	}
	if s := l.Stats(); s.Open != 2 || s.Full != 2 {
		t.Fatalf("stats %+v, want 2 open, 2 refused", s)
	}
}

// A user at the cap does not stop another user; a lease moved to another
// user (connection_init naming someone else) gives the first one's slot
// back; a refused Bind holds no slot.
func TestPerUser(t *testing.T) {
	l := New(Config{MaxPerUser: 2})
	admit := func(user string) (*Lease, *httptest.ResponseRecorder, bool) {
		w := httptest.NewRecorder()
		_, le, ok := l.Admit(w, request("192.0.2.1"), user)
		return le, w, ok
	}
	a1, _, _ := admit("acme\x00alice")
	a2, _, _ := admit("acme\x00alice")
	_, w, ok := admit("acme\x00alice")
	if ok {
		t.Fatal("alice's third connection admitted")
	}
	refusal(t, w, http.StatusTooManyRequests, errkind.CodeRateLimited)
	if _, _, ok := admit("acme\x00bob"); !ok {
		t.Fatal("bob refused while alice is at her cap")
	}
	if _, _, ok := admit("globex\x00alice"); !ok {
		t.Fatal("another tenant's alice refused")
	}
	// Known only at connection_init.
	late, _, _ := admit("")
	if err := late.Bind("acme\x00alice"); !errors.Is(err, errkind.ErrRateLimited) {
		t.Fatalf("Bind over the cap: %v", err)
	}
	late.Release()
	a1.Release()
	late2, _, _ := admit("")
	if err := late2.Bind("acme\x00alice"); err != nil {
		t.Fatalf("Bind after a release: %v", err)
	}
	if err := late2.Bind("acme\x00alice"); err != nil {
		t.Fatalf("Bind to the same user again: %v", err)
	}
	// Moving a2 to carol frees one of alice's slots.
	if err := a2.Bind("acme\x00carol"); err != nil {
		t.Fatal(err)
	}
	a3, _, ok := admit("acme\x00alice")
	if !ok {
		t.Fatal("alice refused after one of her leases moved to carol")
	}
	for _, le := range []*Lease{a2, a3, late2} {
		le.Release()
	}
	if s := l.Stats(); s.UserCap != 2 {
		t.Fatalf("stats %+v, want 2 refused per user", s)
	}
	if n := l.Users(); n != 2 { // bob and globex's alice are still open
		t.Fatalf("%d users hold slots, want 2", n)
	}
}

func TestConnectRate(t *testing.T) {
	proxies, _ := ratelimit.ParseProxies([]string{"10.0.0.1"})
	l := New(Config{ConnectRate: 0.01, ConnectBurst: 2, Proxies: proxies})
	for range 2 {
		if _, _, ok := l.Admit(httptest.NewRecorder(), request("10.0.0.1", "203.0.113.5"), ""); !ok {
			t.Fatal("refused within the burst")
		}
	}
	w := httptest.NewRecorder()
	if _, _, ok := l.Admit(w, request("10.0.0.1", "203.0.113.5"), ""); ok {
		t.Fatal("admitted over the burst")
	}
	refusal(t, w, http.StatusTooManyRequests, errkind.CodeRateLimited)
	// Another client behind the same proxy is not affected.
	if _, _, ok := l.Admit(httptest.NewRecorder(), request("10.0.0.1", "203.0.113.6"), ""); !ok {
		t.Fatal("another client behind the proxy refused")
	}
	// A refused connect held no slot.
	if s := l.Stats(); s.Open != 3 || s.ConnectRate != 1 {
		t.Fatalf("stats %+v", s)
	}
}
