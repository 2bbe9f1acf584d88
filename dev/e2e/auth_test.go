package e2e_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
	"github.com/oshirase/oshirase/service/auth/authtest"
)

const (
	jwtSecret   = "e2e-secret-that-is-long-enough-for-hs256"
	frontend    = "http://localhost:3000"
	platformKey = "platform-key-0123456789"
)

var hmacKey = &authtest.Key{Alg: "HS256", Signer: []byte(jwtSecret), Public: []byte(jwtSecret)}

// jwtStack runs both services in AUTH_MODE=jwt with tenant-bound API keys
// for acme and globex and a platform key.
func jwtStack(t *testing.T, subEnv ...string) *stack {
	t.Helper()
	return jwtStackOn(t, harness.StartRedis(t), subEnv...)
}

// jwtStackOn is jwtStack on the Redis r.
func jwtStackOn(t *testing.T, r *harness.Redis, subEnv ...string) *stack {
	t.Helper()
	common := []string{"AUTH_MODE=jwt", "JWT_SECRET=" + jwtSecret, "ALLOWED_ORIGINS=" + frontend}
	pub := harness.StartPub(t, r, append(common, "PUBLISHER_API_KEYS=acme-key-0123456789:acme,globex-key-0123456789:globex,"+platformKey+":*")...)
	sub := harness.StartSub(t, r, append(common, subEnv...)...)
	return &stack{redis: r, pub: pub, sub: sub}
}

func userToken(t *testing.T, user, tenant, store string) string {
	t.Helper()
	c := authtest.Claims(user, tenant, time.Hour)
	if store != "" {
		c["store"] = store
	}
	return hmacKey.Sign(t, c)
}

func connectAs(t *testing.T, s *harness.Service, protocol, token string) *gqlws.Client {
	t.Helper()
	c, err := gqlws.Connect(s.WSURL(), protocol, map[string]any{"Authorization": "Bearer " + token})
	if err != nil {
		t.Fatalf("connect with token: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// publishAs calls publish(input) with an API key and returns receivedUsers.
func publishAs(t *testing.T, pub *harness.Service, key string, input map[string]any) (int, error) {
	t.Helper()
	r, err := pub.Post("/query", `mutation($in:PublishInput!){publish(input:$in){receivedUsers}}`,
		map[string]any{"in": input}, "Authorization", "Bearer "+key)
	if err != nil {
		return 0, err
	}
	if len(r.Errors) > 0 {
		return 0, fmt.Errorf("%s (%v, HTTP %d)", r.Errors[0].Message, r.Errors[0].Extensions["code"], r.Status)
	}
	var d struct{ Publish struct{ ReceivedUsers int } }
	err = json.Unmarshal(r.Data, &d)
	return d.Publish.ReceivedUsers, err
}

func waitReceiversAs(t *testing.T, pub *harness.Service, key string, input map[string]any, n int) {
	t.Helper()
	in := map[string]any{"text": "probe:"}
	for k, v := range input {
		in[k] = v
	}
	eventually(t, 20*time.Second, fmt.Sprintf("%d receivers for %v", n, input), func() bool {
		got, err := publishAs(t, pub, key, in)
		return err == nil && got == n
	})
}

// 1 and 2: a token reads only its own user's notices, and a notice for one
// tenant never reaches another tenant's user of the same name.
func TestJWTIdentityAndTenantIsolation(t *testing.T) {
	s := jwtStack(t)
	acmeBob := connectAs(t, s.sub, gqlws.TransportWS, userToken(t, "bob", "acme", ""))
	globexBob := connectAs(t, s.sub, gqlws.LegacyWS, userToken(t, "bob", "globex", ""))

	// Subscribing as someone else is refused and makes no subscription.
	subscribe(t, acmeBob, "spy", "alice")
	if got := untilDone(t, acmeBob, "spy"); !strings.Contains(got, "FORBIDDEN") {
		t.Fatalf("subscribing as another user: %s", got)
	}
	if n, err := publishAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "alice", "text": "x"}); err != nil || n != 0 {
		t.Fatalf("alice has %d receivers (%v) after a refused subscription", n, err)
	}

	subscribe(t, acmeBob, "1", "bob")
	subscribe(t, globexBob, "1", "bob")
	waitReceiversAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob"}, 1)
	waitReceiversAs(t, s.pub, "globex-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob"}, 1)

	if n, err := publishAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob", "text": "acme only"}); err != nil || n != 1 {
		t.Fatalf("acme publish: %d, %v", n, err)
	}
	if n, err := publishAs(t, s.pub, "globex-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob", "text": "globex only"}); err != nil || n != 1 {
		t.Fatalf("globex publish: %d, %v", n, err)
	}
	expectScope(t, expectNotice(t, acmeBob, "acme only"), "PERSON")
	expectScope(t, expectNotice(t, globexBob, "globex only"), "PERSON")
	expectSilence(t, acmeBob, 300*time.Millisecond)
	expectSilence(t, globexBob, 10*time.Millisecond)

	// A tenant-bound key cannot reach another tenant, nor everyone.
	if _, err := publishAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob", "tenant": "globex", "text": "x"}); err == nil || !strings.Contains(err.Error(), "FORBIDDEN") {
		t.Fatalf("acme key publishing to globex: %v", err)
	}
	if _, err := publishAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PUBLIC", "text": "x"}); err == nil || !strings.Contains(err.Error(), "FORBIDDEN") {
		t.Fatalf("acme key publishing to everyone: %v", err)
	}
	// The platform key can.
	if n, err := publishAs(t, s.pub, platformKey, map[string]any{"scope": "PUBLIC", "text": "to all"}); err != nil || n != 2 {
		t.Fatalf("public publish: %d, %v", n, err)
	}
	for _, c := range []*gqlws.Client{acmeBob, globexBob} {
		expectScope(t, expectNotice(t, c, "to all"), "PUBLIC")
	}
	// Without credentials pub answers 401.
	r, err := s.pub.Post("/query", sendMutation, map[string]any{"to": "bob", "text": "anon"})
	if err != nil || r.Status != http.StatusUnauthorized || r.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
		t.Fatalf("anonymous publish: %+v, %v", r, err)
	}
	// A user token cannot publish.
	r, err = s.pub.Post("/query", sendMutation, map[string]any{"to": "bob", "text": "x"}, "Authorization", "Bearer "+userToken(t, "bob", "acme", ""))
	if err != nil || r.Status != http.StatusForbidden {
		t.Fatalf("user token publishing: %+v, %v", r, err)
	}
	// A publisher token publishes within its tenant with sendNotification.
	pubTok := hmacKey.Sign(t, map[string]any{"sub": "billing", "tenant": "acme", "roles": []string{"publisher"}, "exp": time.Now().Add(time.Hour).Unix()})
	r, err = s.pub.Post("/query", sendMutation, map[string]any{"to": "bob", "text": "from billing"}, "Authorization", "Bearer "+pubTok)
	if err != nil || len(r.Errors) > 0 {
		t.Fatalf("publisher token: %+v, %v", r, err)
	}
	expectScope(t, expectNotice(t, acmeBob, "from billing"), "PERSON")
	expectSilence(t, globexBob, 300*time.Millisecond)
}

// expectScope checks the scope a notice arrived with: the subscription
// selects it (gqlws asks for every field), so an empty one is a failure too.
func expectScope(t *testing.T, n gqlws.Notification, want string) {
	t.Helper()
	if n.Scope != want {
		t.Fatalf("notice %q arrived with scope %q, want %s", n.Text, n.Scope, want)
	}
}

// 3. Names built to collide or inject are rejected or kept distinct, and
// never delivered across users or tenants.
func TestHostileNamesStayDistinct(t *testing.T) {
	s := jwtStack(t)
	names := []string{"a:b", "a", "b", "*", "?", "[", "]", "{x}", "a/p/b", "a%2Fp", "bob", "bоb" /* Cyrillic о */, "ＢＯＢ", "a b", "%", "*:*"}
	type who struct{ tenant, user string }
	var all []who
	for _, tenant := range []string{"acme", "acme/p", "a:b", "*"} {
		for _, n := range names {
			all = append(all, who{tenant, n})
		}
	}
	clients := map[who]*gqlws.Client{}
	for _, w := range all {
		c := connectAs(t, s.sub, gqlws.TransportWS, userToken(t, w.user, w.tenant, ""))
		subscribe(t, c, "1", w.user)
		clients[w] = c
	}
	for _, w := range all {
		waitReceiversAs(t, s.pub, platformKey, map[string]any{"scope": "PERSON", "to": w.user, "tenant": w.tenant}, 1)
	}
	for _, w := range all {
		text := fmt.Sprintf("for %q in %q", w.user, w.tenant)
		if n, err := publishAs(t, s.pub, platformKey, map[string]any{"scope": "PERSON", "to": w.user, "tenant": w.tenant, "text": text}); err != nil || n != 1 {
			t.Fatalf("%s: receivedUsers %d, %v", text, n, err)
		}
		expectScope(t, expectNotice(t, clients[w], text), "PERSON")
	}
	for _, w := range all {
		expectSilence(t, clients[w], 20*time.Millisecond)
	}

	// Names that cannot be valid are refused: by the verifier in a token,
	// by pub as a target.
	for _, bad := range []string{"a\nb", "bob\x00", "\u202ebob", strings.Repeat("x", 10<<10)} {
		c, _, err := gqlws.Dial(s.sub.WSURL(), gqlws.TransportWS, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Send(gqlws.Msg{Type: "connection_init", Payload: []byte(`{"Authorization":"Bearer ` + userToken(t, bad, "acme", "") + `"}`)})
		<-c.Closed()
		if code, _ := c.CloseStatus(); code != 4403 {
			t.Errorf("token for user %.20q: close %d, want 4403", bad, code)
		}
		if _, err := publishAs(t, s.pub, platformKey, map[string]any{"scope": "PERSON", "to": bad, "tenant": "acme", "text": "x"}); err == nil || !strings.Contains(err.Error(), "BAD_USER_INPUT") {
			t.Errorf("publishing to %.20q: %v", bad, err)
		}
	}
}

// 4. Bad tokens: each is refused with 4403 on both WebSocket subprotocols
// and 401 over HTTP, and no subscription is made.
func TestBadTokensAreRejected(t *testing.T) {
	rsa := authtest.NewRSAKey(t, "rsa-1")
	s := jwtStack(t)
	rsStack := harness.StartSub(t, s.redis, "AUTH_MODE=jwt", "JWT_PUBLIC_KEY="+string(rsa.PublicPEM(t)), "ALLOWED_ORIGINS="+frontend)
	claims := func(mut func(map[string]any)) map[string]any {
		c := authtest.Claims("bob", "acme", time.Hour)
		mut(c)
		return c
	}
	other := &authtest.Key{Alg: "HS256", Signer: []byte("another-secret-that-is-long-enough"), Public: nil}
	confused := &authtest.Key{Alg: "HS256", Signer: rsa.PublicPEM(t)}
	for _, tc := range []struct {
		name  string
		sub   *harness.Service
		token string
	}{
		{"alg none", s.sub, hmacKey.SignWith(t, "none", nil, claims(func(map[string]any) {}))},
		{"wrong key", s.sub, other.Sign(t, claims(func(map[string]any) {}))},
		{"HS256 signed with the RSA public key", rsStack, confused.Sign(t, claims(func(map[string]any) {}))},
		{"expired", s.sub, hmacKey.Sign(t, claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))},
		{"no exp", s.sub, hmacKey.Sign(t, claims(func(c map[string]any) { delete(c, "exp") }))},
		{"not yet valid", s.sub, hmacKey.Sign(t, claims(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() }))},
		{"no tenant", s.sub, hmacKey.Sign(t, claims(func(c map[string]any) { delete(c, "tenant") }))},
		{"garbage", s.sub, "not.a.token"},
		{"empty", s.sub, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, proto := range []string{gqlws.TransportWS, gqlws.LegacyWS} {
				c, _, err := gqlws.Dial(tc.sub.WSURL(), proto, nil)
				if err != nil {
					t.Fatal(err)
				}
				init, _ := json.Marshal(map[string]any{"Authorization": "Bearer " + tc.token})
				_ = c.Send(gqlws.Msg{Type: "connection_init", Payload: init})
				_ = c.Subscribe("1", "bob")
				select {
				case <-c.Closed():
				case <-time.After(10 * time.Second):
					t.Fatalf("%s: connection not closed", proto)
				}
				for m := range c.Msgs {
					if m.Type == "connection_ack" || m.Type == "next" || m.Type == "data" {
						t.Fatalf("%s: got %s for a bad token", proto, m.Type)
					}
				}
				if code, reason := c.CloseStatus(); code != 4403 {
					t.Fatalf("%s: closed with %d %q, want 4403", proto, code, reason)
				}
			}
			r, err := tc.sub.Post("/graphql", `{ok}`, nil, "Authorization", "Bearer "+tc.token)
			if err != nil || r.Status != http.StatusUnauthorized {
				t.Fatalf("POST: %+v, %v; want 401", r, err)
			}
		})
	}
	if got := metric(t, s.sub, "oshirase_sub_subscriptions") + metric(t, rsStack, "oshirase_sub_subscriptions"); got != 0 {
		t.Fatalf("%d subscriptions exist after bad tokens", got)
	}
	// Each refused connection_init is counted once, as auth_refused: 8
	// tokens to one instance and 1 to the other, on both subprotocols.
	eventually(t, 10*time.Second, "the refused connections counted", func() bool {
		return metricLabeled(t, s.sub, "oshirase_sub_disconnects_total", "reason", "auth_refused") == 16 &&
			metricLabeled(t, rsStack, "oshirase_sub_disconnects_total", "reason", "auth_refused") == 2
	})
	// Wrong audience and issuer, where they are configured.
	strict := harness.StartSub(t, s.redis, "AUTH_MODE=jwt", "JWT_SECRET="+jwtSecret, "JWT_ISSUER=https://id.example", "JWT_AUDIENCE=oshirase", "ALLOWED_ORIGINS="+frontend)
	good := claims(func(c map[string]any) { c["iss"] = "https://id.example"; c["aud"] = "oshirase" })
	for name, c := range map[string]map[string]any{
		"wrong aud": claims(func(c map[string]any) { c["iss"] = "https://id.example"; c["aud"] = "other" }),
		"wrong iss": claims(func(c map[string]any) { c["iss"] = "https://evil.example"; c["aud"] = "oshirase" }),
		"good":      good,
	} {
		r, err := strict.Post("/graphql", `{ok}`, nil, "Authorization", "Bearer "+hmacKey.Sign(t, c))
		want := http.StatusUnauthorized
		if name == "good" {
			want = http.StatusOK
		}
		if err != nil || r.Status != want {
			t.Fatalf("%s: %+v, %v; want %d", name, r, err, want)
		}
	}
}

// A token that expires while connected closes the connection at expiry
// (exp plus JWT_LEEWAY).
func TestExpiringTokenClosesTheConnection(t *testing.T) {
	s := jwtStack(t, "JWT_LEEWAY=1s")
	c := connectAs(t, s.sub, gqlws.TransportWS, hmacKey.Sign(t, authtest.Claims("bob", "acme", 2*time.Second)))
	subscribe(t, c, "1", "bob")
	select {
	case <-c.Closed():
	case <-time.After(15 * time.Second):
		t.Fatal("connection outlived its token")
	}
	if code, reason := c.CloseStatus(); code != 4403 || !strings.Contains(reason, "expired") {
		t.Fatalf("closed with %d %q, want 4403 token expired", code, reason)
	}
	eventually(t, 10*time.Second, "the disconnect counted as auth_expired", func() bool {
		return metricLabeled(t, s.sub, "oshirase_sub_disconnects_total", "reason", "auth_expired") == 1
	})
}

// 6. A WebSocket from an origin not on the list is refused.
func TestForeignOriginIsRefused(t *testing.T) {
	s := jwtStack(t)
	_, resp, err := gqlws.Dial(s.sub.WSURL(), gqlws.TransportWS, http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v, %+v; want 403", err, resp)
	}
	c, _, err := gqlws.Dial(s.sub.WSURL(), gqlws.TransportWS, http.Header{"Origin": {frontend}})
	if err != nil {
		t.Fatalf("listed origin refused: %v", err)
	}
	c.Close()
}

// 7. A key rotated at the JWKS endpoint is picked up without a restart.
func TestJWKSRotation(t *testing.T) {
	k1, k2 := authtest.NewECKey(t, "k1"), authtest.NewEd25519Key(t, "k2")
	jwks := authtest.NewJWKSServer(t, k1)
	r := harness.StartRedis(t)
	sub := harness.StartSub(t, r, "AUTH_MODE=jwt", "JWT_JWKS_URL="+jwks.URL, "JWT_JWKS_REFRESH=500ms", "ALLOWED_ORIGINS="+frontend)
	post := func(k *authtest.Key) int {
		resp, err := sub.Post("/graphql", `{ok}`, nil, "Authorization", "Bearer "+k.Sign(t, authtest.Claims("bob", "acme", time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}
	if got := post(k1); got != 200 {
		t.Fatalf("k1 before rotation: %d", got)
	}
	if got := post(k2); got != 401 {
		t.Fatalf("k2 before rotation: %d", got)
	}
	jwks.SetKeys(k2)
	eventually(t, 15*time.Second, "k2 accepted", func() bool { return post(k2) == 200 })
	eventually(t, 15*time.Second, "k1 retired", func() bool { return post(k1) == 401 })
}

// 5. Randomized isolation: tenants × stores × users connected with real
// tokens, random publishes over every scope; each connection receives
// exactly its expected set — 0 leaks, 0 misses — over 100,000+ deliveries.
func TestRandomizedIsolation(t *testing.T) {
	// An isolation test, not a slow-consumer one: generous queue and write
	// deadline so that a loaded test machine cannot cut a reader off.
	s := jwtStack(t, "QUEUE_SIZE=4096", "WRITE_TIMEOUT=30s")
	rng := rand.New(rand.NewPCG(1, 2))
	type member struct{ tenant, store, user string }
	var members []member
	tenants := []string{"acme", "globex", "initech", "umbrella"}
	for _, tenant := range tenants {
		for st := range 5 {
			for u := range 10 {
				members = append(members, member{tenant, fmt.Sprintf("store-%d", st), fmt.Sprintf("user-%d", u)})
			}
		}
	}
	conns := make([]*gqlws.Client, len(members))
	for i, m := range members {
		conns[i] = connectAs(t, s.sub, []string{gqlws.TransportWS, gqlws.LegacyWS}[i%2], userToken(t, m.user, m.tenant, m.store))
		subscribe(t, conns[i], "1", m.user)
	}
	waitReceiversAs(t, s.pub, platformKey, map[string]any{"scope": "PUBLIC"}, len(members))

	// Plan the notices and who must get each.
	type notice struct {
		input map[string]any
		to    []int
	}
	var plan []notice
	deliveries := 0
	for len(plan) < 4000 {
		m := members[rng.IntN(len(members))]
		var n notice
		switch r := rng.IntN(100); {
		case r < 12:
			n.input = map[string]any{"scope": "PUBLIC"}
		case r < 35:
			n.input = map[string]any{"scope": "COMPANY", "tenant": m.tenant}
		case r < 65:
			n.input = map[string]any{"scope": "STORE", "tenant": m.tenant, "to": m.store}
		default:
			n.input = map[string]any{"scope": "PERSON", "tenant": m.tenant, "to": m.user}
		}
		for i, o := range members {
			switch n.input["scope"] {
			case "PUBLIC":
			case "COMPANY":
				if o.tenant != m.tenant {
					continue
				}
			case "STORE":
				if o.tenant != m.tenant || o.store != m.store {
					continue
				}
			case "PERSON":
				if o.tenant != m.tenant || o.user != m.user {
					continue
				}
			}
			n.to = append(n.to, i)
		}
		n.input["text"] = fmt.Sprintf("n%d", len(plan))
		deliveries += len(n.to)
		plan = append(plan, n)
	}
	if deliveries < 100_000 {
		t.Fatalf("plan has only %d deliveries", deliveries)
	}

	want := make([]map[string]bool, len(members))
	for i := range want {
		want[i] = map[string]bool{}
	}
	scopeOf := map[string]string{} // text → the scope it was published to
	for _, n := range plan {
		scopeOf[n.input["text"].(string)] = n.input["scope"].(string)
		for _, i := range n.to {
			want[i][n.input["text"].(string)] = true
		}
	}
	got := make([]map[string]bool, len(members))
	var wg sync.WaitGroup
	for i, c := range conns {
		got[i] = map[string]bool{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(got[i]) < len(want[i]) {
				n, _, err := c.NextNotification(30 * time.Second)
				if err != nil {
					t.Errorf("member %d: %v after %d of %d", i, err, len(got[i]), len(want[i]))
					return
				}
				if !want[i][n.Text] || got[i][n.Text] {
					t.Errorf("member %+v got %q: a leak or a duplicate", members[i], n.Text)
					return
				}
				if n.Scope != scopeOf[n.Text] {
					t.Errorf("member %+v got %q with scope %q, published to %s", members[i], n.Text, n.Scope, scopeOf[n.Text])
					return
				}
				got[i][n.Text] = true
			}
		}()
	}

	start := time.Now()
	work := make(chan notice)
	var pwg sync.WaitGroup
	for range 8 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for n := range work {
				if got, err := publishAs(t, s.pub, platformKey, n.input); err != nil || got != len(n.to) {
					t.Errorf("publish %v: receivedUsers %d, want %d (%v)", n.input, got, len(n.to), err)
				}
			}
		}()
	}
	for _, n := range plan {
		work <- n
	}
	close(work)
	pwg.Wait()
	wg.Wait()
	t.Logf("%d notices, %d deliveries checked in %s", len(plan), deliveries, time.Since(start).Round(time.Millisecond))
	for i, c := range conns {
		expectSilence(t, c, 5*time.Millisecond)
		if len(got[i]) != len(want[i]) {
			t.Fatalf("member %d: %d of %d", i, len(got[i]), len(want[i]))
		}
	}
}

// Tokens also come from "authToken" in connection_init, the upgrade
// request's Authorization header, and a configured cookie.
func TestTokenSources(t *testing.T) {
	s := jwtStack(t, "AUTH_COOKIE=oshirase_token")
	tok := userToken(t, "bob", "acme", "")
	if _, err := gqlws.Connect(s.sub.WSURL(), gqlws.TransportWS, map[string]any{"authToken": tok}); err != nil {
		t.Fatalf("authToken: %v", err)
	}
	for name, h := range map[string]http.Header{
		"header": {"Authorization": {"Bearer " + tok}},
		"cookie": {"Cookie": {"oshirase_token=" + tok}},
	} {
		c, _, err := gqlws.Dial(s.sub.WSURL(), gqlws.TransportWS, h)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Send(gqlws.Msg{Type: "connection_init"})
		if m, err := c.Next(5 * time.Second); err != nil || m.Type != "connection_ack" {
			t.Fatalf("%s: %+v, %v", name, m, err)
		}
		c.Close()
	}
	req, _ := http.NewRequest(http.MethodPost, s.sub.URL+"/graphql", strings.NewReader(`{"query":"{ok}"}`))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(&http.Cookie{Name: "oshirase_token", Value: tok})
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST with cookie: %v, %v", resp, err)
	}
	resp.Body.Close()
}

// Introspection and the Playground can be switched off. Switched off,
// introspection is refused as such (FORBIDDEN, saying why), not as an
// internal error; switched on, the same query answers the schema.
func TestPlaygroundAndIntrospectionSwitches(t *testing.T) {
	r := harness.StartRedis(t)
	const introspect = `{ __schema { queryType { name } } }`
	for _, on := range []*harness.Service{harness.StartPub(t, r), harness.StartSub(t, r)} {
		q, err := on.Post("/graphql", introspect, nil)
		if err != nil || len(q.Errors) > 0 || !strings.Contains(string(q.Data), `"queryType":{"name":"Query"}`) {
			t.Errorf("%s: introspection with the default INTROSPECTION=true: %+v %v", on.Name, q, err)
		}
	}
	for _, svc := range []*harness.Service{
		harness.StartPub(t, r, "PLAYGROUND=false", "INTROSPECTION=false"),
		harness.StartSub(t, r, "PLAYGROUND=false", "INTROSPECTION=false"),
	} {
		resp, err := http.Get(svc.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: Playground answered %d with PLAYGROUND=false", svc.Name, resp.StatusCode)
		}
		for _, query := range []string{introspect, `{ __type(name: "Query") { name } }`} {
			q, err := svc.Post("/graphql", query, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(q.Errors) != 1 || q.Errors[0].Extensions["code"] != "FORBIDDEN" ||
				!strings.Contains(q.Errors[0].Message, "introspection is disabled") || strings.Contains(string(q.Data), `"name"`) {
				t.Errorf("%s: %s with INTROSPECTION=false: %+v (data %s); want one FORBIDDEN error saying introspection is disabled, and no schema", svc.Name, query, q, q.Data)
			}
		}
		if strings.Contains(svc.Log(), "request failed") {
			t.Errorf("%s logged a refused introspection as a failure:\n%s", svc.Name, svc.Log())
		}
	}
}
