package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/service/auth/authtest"
)

// A credential past its exp but inside JWT_LEEWAY is valid: a request made
// with it is served in full. Before the fix the request's deadline was the
// raw exp, so pub answered 200 with the body `null`, published nothing and
// logged nothing.
func TestPublishWithTokenInsideLeeway(t *testing.T) {
	s := jwtStack(t) // JWT_LEEWAY: the default 30s
	bob := connectAs(t, s.sub, gqlws.TransportWS, userToken(t, "bob", "acme", ""))
	subscribe(t, bob, "1", "bob")
	waitReceiversAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob"}, 1)

	publisher := func(expiredFor time.Duration) string {
		c := authtest.Claims("backend", "acme", -expiredFor)
		delete(c, "sub")
		c["roles"] = []string{"publisher"}
		return hmacKey.Sign(t, c)
	}
	inside := publisher(2 * time.Second)
	for _, tc := range []struct{ name, query string }{
		{"sendNotification", `mutation{sendNotification(to:"bob",text:"inside leeway 1"){receivedUsers}}`},
		{"publish", `mutation{publish(input:{scope:PERSON,to:"bob",text:"inside leeway 2"}){receivedUsers}}`},
	} {
		r, err := s.pub.Post("/query", tc.query, nil, "Authorization", "Bearer "+inside)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if r.Status != http.StatusOK || len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"receivedUsers":1`) {
			t.Fatalf("%s with a token 2s past exp (leeway 30s): HTTP %d data %s errors %+v; want receivedUsers 1",
				tc.name, r.Status, r.Data, r.Errors)
		}
	}
	expectNotice(t, bob, "inside leeway 1")
	expectNotice(t, bob, "inside leeway 2")

	// Past exp + leeway: refused with a code, never a silent null.
	r, err := s.pub.Post("/query", `mutation{sendNotification(to:"bob",text:"too late"){receivedUsers}}`, nil,
		"Authorization", "Bearer "+publisher(time.Minute))
	if err != nil || r.Status != http.StatusUnauthorized || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
		t.Fatalf("a token 1m past exp: %+v, %v; want 401 UNAUTHENTICATED", r, err)
	}
	expectSilence(t, bob, 300*time.Millisecond)
}

// A user token inside its leeway is served on every transport until its
// effective expiry (exp + JWT_LEEWAY); then the stream ends with a coded
// error — over SSE an UNAUTHENTICATED error event, over WebSocket close
// code 4403. Past its effective expiry the token is refused: SSE gets 401
// UNAUTHENTICATED. Before the fix SSE answered 200 and then an UNAVAILABLE
// error (a client retries that forever), and a WebSocket was closed with
// 4403 at once.
func TestSubscriptionWithTokenInsideLeeway(t *testing.T) {
	const leeway = 12 * time.Second
	s := jwtStack(t, "JWT_LEEWAY=12s", "KEEPALIVE_INTERVAL=1s")
	// exp one second ago: the token stays valid for about 11 more seconds.
	claims := authtest.Claims("bob", "acme", -time.Second)
	token := hmacKey.Sign(t, claims)
	effectiveExpiry := time.Unix(claims["exp"].(int64), 0).Add(leeway)

	st := openSSE(t, s.sub, "bob", "Authorization", "Bearer "+token)
	if st.resp.StatusCode != http.StatusOK || st.resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(st.resp.Body)
		t.Fatalf("SSE with a token inside its leeway: HTTP %d %s", st.resp.StatusCode, body)
	}
	transport := connectAs(t, s.sub, gqlws.TransportWS, token)
	legacy := connectAs(t, s.sub, gqlws.LegacyWS, token)
	subscribe(t, transport, "1", "bob")
	subscribe(t, legacy, "1", "bob")
	waitReceiversAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob"}, 3)
	if n, err := publishAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob", "text": "served"}); err != nil || n != 3 {
		t.Fatalf("publish: %d, %v; want 3 receivers", n, err)
	}
	if text, ok := st.nextNotice(t, 10*time.Second); !ok || text != "served" {
		t.Fatalf("SSE: got %q, %v; want the notice", text, ok)
	}
	expectNotice(t, transport, "served")
	expectNotice(t, legacy, "served")

	// At the effective expiry every stream ends, each with its code.
	var wg sync.WaitGroup
	for _, c := range []*gqlws.Client{transport, legacy} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-c.Closed():
			case <-time.After(time.Until(effectiveExpiry) + 10*time.Second):
				t.Errorf("%s: the connection outlived its token", c.Protocol)
				return
			}
			if code, reason := c.CloseStatus(); code != 4403 || !strings.Contains(reason, "expired") {
				t.Errorf("%s: closed with %d %q, want 4403 token expired", c.Protocol, code, reason)
			}
			if time.Now().Before(effectiveExpiry.Add(-time.Second)) {
				t.Errorf("%s: closed before exp + leeway (%s early)", c.Protocol, time.Until(effectiveExpiry))
			}
		}()
	}
	var codes []string
	deadline := time.After(time.Until(effectiveExpiry) + 10*time.Second)
sse:
	for {
		select {
		case ev, ok := <-st.events:
			if !ok {
				break sse
			}
			if ev.Event != "next" {
				continue
			}
			var p struct {
				Errors []struct {
					Extensions struct{ Code string } `json:"extensions"`
				} `json:"errors"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &p); err != nil {
				t.Fatalf("SSE event %q: %v", ev.Data, err)
			}
			for _, e := range p.Errors {
				codes = append(codes, e.Extensions.Code)
			}
		case <-deadline:
			t.Fatal("SSE: the stream outlived its token")
		}
	}
	if len(codes) != 1 || codes[0] != "UNAUTHENTICATED" {
		t.Fatalf("SSE stream ended with error codes %v, want one UNAUTHENTICATED", codes)
	}
	if time.Now().Before(effectiveExpiry.Add(-time.Second)) {
		t.Fatalf("SSE: ended before exp + leeway (%s early)", time.Until(effectiveExpiry))
	}
	wg.Wait()

	// Past exp + leeway the same token is refused outright.
	late := openSSE(t, s.sub, "bob", "Authorization", "Bearer "+token)
	var body struct {
		Errors []struct {
			Extensions struct{ Code string } `json:"extensions"`
		} `json:"errors"`
	}
	_ = json.NewDecoder(late.resp.Body).Decode(&body)
	if late.resp.StatusCode != http.StatusUnauthorized || len(body.Errors) != 1 || body.Errors[0].Extensions.Code != "UNAUTHENTICATED" {
		t.Fatalf("SSE with an expired token: HTTP %d %+v, want 401 UNAUTHENTICATED", late.resp.StatusCode, body)
	}
}
