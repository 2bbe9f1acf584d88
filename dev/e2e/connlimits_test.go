package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
	"github.com/oshirase/oshirase/wire"
)

// Issue 12, limits: each limit answers with its documented status, close
// code or error code, counts the refusal on /metrics, logs it, and leaves
// everyone under their own limit alone.

// refusedUpgrade dials a WebSocket that must be refused before the upgrade
// and checks the HTTP answer: status, Retry-After and the error code.
func refusedUpgrade(t *testing.T, s *harness.Service, header http.Header, status int, code string) {
	t.Helper()
	c, resp, err := gqlws.Dial(s.WSURL(), gqlws.TransportWS, header)
	if err == nil {
		c.Close()
		t.Fatalf("upgrade admitted, want HTTP %d", status)
	}
	if resp == nil {
		t.Fatalf("no HTTP answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	checkRefusal(t, answer{Status: resp.StatusCode, Header: resp.Header, Body: body}, status, code)
}

// checkRefusal checks a refused request: status, a Retry-After of whole
// seconds and the code.
func checkRefusal(t *testing.T, a answer, status int, code string) {
	t.Helper()
	expectRefusal(t, a, status, code, "")
	if n, err := strconv.Atoi(a.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("Retry-After %q, want whole seconds ≥ 1", a.Header.Get("Retry-After"))
	}
}

// sseRequest is a graphql-sse request for user's notices that must be
// refused (an admitted one would stream until the client's timeout).
func refusedSSE(t *testing.T, s *harness.Service, user string, status int, code string, header ...string) {
	t.Helper()
	q := fmt.Sprintf(`{"query":"subscription{onNotificationReceived(userName:\"%s\"){id}}"}`, user)
	a := request(t, http.MethodPost, s.URL+"/graphql", strings.NewReader(q),
		append([]string{"Content-Type", "application/json", "Accept", "text/event-stream"}, header...)...)
	checkRefusal(t, a, status, code)
}

func expectLogged(t *testing.T, s *harness.Service, reason string) {
	t.Helper()
	eventually(t, 5*time.Second, "a log line with reason="+reason, func() bool {
		return strings.Contains(s.Log(), "reason="+reason)
	})
}

// MAX_CONNECTIONS: past it a WebSocket upgrade and an SSE stream get 503
// with Retry-After before anything starts; the connections in place keep
// receiving; a slot freed by a close is taken again.
func TestMaxConnections(t *testing.T) {
	s := startStack(t, "MAX_CONNECTIONS=3")
	a := connect(t, s.sub, gqlws.TransportWS)
	subscribe(t, a, "1", "max-a")
	b := connect(t, s.sub, gqlws.LegacyWS)
	subscribe(t, b, "1", "max-b")
	sse := openSSE(t, s.sub, "max-c")
	if sse.resp.StatusCode != http.StatusOK {
		t.Fatalf("third stream (SSE): %d", sse.resp.StatusCode)
	}

	refusedUpgrade(t, s.sub, nil, http.StatusServiceUnavailable, "UNAVAILABLE")
	refusedSSE(t, s.sub, "max-d", http.StatusServiceUnavailable, "UNAVAILABLE")
	if got := metric(t, s.sub, "oshirase_sub_connections_refused_max_total"); got != 2 {
		t.Fatalf("oshirase_sub_connections_refused_max_total = %d, want 2", got)
	}
	expectLogged(t, s.sub, "max_connections")

	s.pub.WaitReceivers("max-a", 1)
	send(t, s.pub, "max-b", "still served")
	expectNotice(t, b, "still served")

	a.Close()
	eventually(t, 10*time.Second, "a slot freed by a closed connection", func() bool {
		c, _, err := gqlws.Dial(s.sub.WSURL(), gqlws.TransportWS, nil)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// MAX_CONNECTIONS_PER_USER (jwt mode): a user at the cap is refused — 429
// before the upgrade when the token comes in a header (always for SSE),
// close 4429 at connection_init when it comes in the payload — while
// another user, and the same name in another tenant, connect and receive.
func TestMaxConnectionsPerUser(t *testing.T) {
	s := jwtStack(t, "MAX_CONNECTIONS_PER_USER=2")
	alice := userToken(t, "alice", "acme", "")
	a1 := connectAs(t, s.sub, gqlws.TransportWS, alice)
	subscribe(t, a1, "1", "alice")
	a2 := connectAs(t, s.sub, gqlws.LegacyWS, alice)
	subscribe(t, a2, "1", "alice")

	// Known at connection_init only: 4429.
	late, _, err := gqlws.Dial(s.sub.WSURL(), gqlws.TransportWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(late.Close)
	if err := late.Send(gqlws.Msg{Type: "connection_init", Payload: mustJSON(map[string]any{"Authorization": "Bearer " + alice})}); err != nil {
		t.Fatal(err)
	}
	expectClose(t, late, 4429, "Too many requests")
	eventually(t, 10*time.Second, `the 4429 counted as disconnects_total{reason="limit"}`, func() bool {
		return metricLabeled(t, s.sub, "oshirase_sub_disconnects_total", "reason", "limit") == 1
	})

	// Known before the upgrade: 429.
	refusedUpgrade(t, s.sub, http.Header{"Authorization": {"Bearer " + alice}}, http.StatusTooManyRequests, "RATE_LIMITED")
	refusedSSE(t, s.sub, "alice", http.StatusTooManyRequests, "RATE_LIMITED", "Authorization", "Bearer "+alice)
	if got := metric(t, s.sub, "oshirase_sub_connections_refused_user_total"); got != 3 {
		t.Fatalf("oshirase_sub_connections_refused_user_total = %d, want 3", got)
	}
	expectLogged(t, s.sub, "max_connections_per_user")

	// Others are unaffected.
	bob := connectAs(t, s.sub, gqlws.TransportWS, userToken(t, "bob", "acme", ""))
	subscribe(t, bob, "1", "bob")
	globexAlice := connectAs(t, s.sub, gqlws.TransportWS, userToken(t, "alice", "globex", ""))
	subscribe(t, globexAlice, "1", "alice")
	waitReceiversAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob"}, 1)
	waitReceiversAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "alice"}, 2)
	waitReceiversAs(t, s.pub, "globex-key-0123456789", map[string]any{"scope": "PERSON", "to": "alice"}, 1)

	// A closed connection gives its slot back.
	a1.Close()
	eventually(t, 10*time.Second, "alice's freed slot", func() bool {
		c, err := gqlws.Connect(s.sub.WSURL(), gqlws.TransportWS, map[string]any{"Authorization": "Bearer " + alice})
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// CONNECT_RATE: a client address past its burst gets 429 with Retry-After;
// behind a trusted proxy the address is X-Forwarded-For's, read from the
// right (a client cannot pick its own), so another client of the same
// proxy is not affected.
func TestConnectRate(t *testing.T) {
	s := startStack(t, "CONNECT_RATE=0.01", "CONNECT_BURST=3", "TRUSTED_PROXIES=127.0.0.1/32")
	from := func(hops string) http.Header { return http.Header{"X-Forwarded-For": {hops}} }
	for i := range 3 {
		c, _, err := gqlws.Dial(s.sub.WSURL(), gqlws.TransportWS, from("203.0.113.1"))
		if err != nil {
			t.Fatalf("connect %d of a burst of 3: %v", i+1, err)
		}
		c.Close()
	}
	refusedUpgrade(t, s.sub, from("203.0.113.1"), http.StatusTooManyRequests, "RATE_LIMITED")
	// A spoofed left-most entry changes nothing: the proxy appended the real one.
	refusedUpgrade(t, s.sub, from("198.51.100.7, 203.0.113.1"), http.StatusTooManyRequests, "RATE_LIMITED")
	refusedSSE(t, s.sub, "rate-a", http.StatusTooManyRequests, "RATE_LIMITED", "X-Forwarded-For", "203.0.113.1")

	other := connectWith(t, s.sub, from("203.0.113.2"))
	subscribe(t, other, "1", "rate-b")
	s.pub.WaitReceivers("rate-b", 1)
	if got := metric(t, s.sub, "oshirase_sub_connections_refused_rate_total"); got != 3 {
		t.Fatalf("oshirase_sub_connections_refused_rate_total = %d, want 3", got)
	}
	expectLogged(t, s.sub, "connect_rate")
}

// connectWith dials with header and completes connection_init.
func connectWith(t *testing.T, s *harness.Service, header http.Header) *gqlws.Client {
	t.Helper()
	c, _, err := gqlws.Dial(s.WSURL(), gqlws.TransportWS, header)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Send(gqlws.Msg{Type: "connection_init"}); err != nil {
		t.Fatal(err)
	}
	expectMsg(t, c, "connection_ack", "")
	return c
}

// MAX_SUBSCRIPTIONS_PER_CONNECTION: one more subscribe gets an "error"
// for its id with TOO_MANY_SUBSCRIPTIONS, on both subprotocols; the
// connection and its subscriptions go on, and a completed one frees a
// place.
func TestMaxSubscriptionsPerConnection(t *testing.T) {
	s := startStack(t, "MAX_SUBSCRIPTIONS_PER_CONNECTION=2")
	for i, proto := range []string{gqlws.TransportWS, gqlws.LegacyWS} {
		t.Run(proto, func(t *testing.T) {
			user := fmt.Sprint("subcap-", i)
			c := connect(t, s.sub, proto)
			subscribe(t, c, "1", user)
			subscribe(t, c, "2", user)
			subscribe(t, c, "3", user)
			expectWSError(t, c, "3", "TOO_MANY_SUBSCRIPTIONS")
			s.pub.WaitReceivers(user, 2)
			drain(c)
			if got := send(t, s.pub, user, "two of them"); got != 2 {
				t.Fatalf("receivedUsers %d, want 2", got)
			}
			for range 2 {
				expectNotice(t, c, "two of them")
			}
			if err := c.Unsubscribe("1"); err != nil {
				t.Fatal(err)
			}
			subscribe(t, c, "4", user)
			s.pub.WaitReceivers(user, 2)
		})
	}
	if got := metric(t, s.sub, "oshirase_sub_subscriptions_refused_total"); got != 2 {
		t.Fatalf("oshirase_sub_subscriptions_refused_total = %d, want 2", got)
	}
	expectLogged(t, s.sub, "max_subscriptions_per_connection")
}

// PUBLISH_RATE: a credential past its burst gets 429 with Retry-After and
// RATE_LIMITED, and nothing of the request is published; one token per
// publish (aliases count); another credential is unaffected.
func TestPublishRate(t *testing.T) {
	r := harness.StartRedis(t)
	pub := harness.StartPub(t, r, "AUTH_MODE=jwt", "JWT_SECRET="+jwtSecret, "ALLOWED_ORIGINS="+frontend,
		"PUBLISHER_API_KEYS=acme-key-0123456789:acme,acme-other-0123456789:acme", "PUBLISH_RATE=0.01", "PUBLISH_BURST=3")
	sub := harness.StartSub(t, r, "AUTH_MODE=jwt", "JWT_SECRET="+jwtSecret, "ALLOWED_ORIGINS="+frontend)
	c := connectAs(t, sub, gqlws.TransportWS, userToken(t, "carol", "acme", ""))
	subscribe(t, c, "1", "carol")
	// Waited for in Redis, not by publishing probes: a probe takes a token
	// too, and on a loaded machine enough of them emptied the other key's
	// bucket before its own publish below.
	waitCounted(t, r, "acme", "carol")
	drain(c)

	const two = `mutation { a: publish(input: {scope: PERSON, to: "carol", text: "one"}) { receivedUsers } b: publish(input: {scope: PERSON, to: "carol", text: "two"}) { receivedUsers } }`
	key := []string{"Authorization", "Bearer acme-key-0123456789"}
	if a := postJSON(t, pub.URL+"/query", two, key...); a.Status != http.StatusOK || strings.Contains(string(a.Body), "errors") {
		t.Fatalf("two publishes of a burst of 3: %d %s", a.Status, a.Body)
	}
	expectNotice(t, c, "one")
	expectNotice(t, c, "two")
	// Two more with one token left: refused whole.
	checkRefusal(t, postJSON(t, pub.URL+"/query", strings.ReplaceAll(two, `"one"`, `"three"`), key...), http.StatusTooManyRequests, "RATE_LIMITED")
	// A publishBatch takes a token per notice: two is one too many.
	const batch = `mutation { publishBatch(inputs: [{scope: PERSON, to: "carol", text: "b1"}, {scope: PERSON, to: "carol", text: "b2"}]) { id } }`
	checkRefusal(t, postJSON(t, pub.URL+"/query", batch, key...), http.StatusTooManyRequests, "RATE_LIMITED")
	if _, err := publishAs(t, pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "carol", "text": "last token"}); err != nil {
		t.Fatal(err)
	}
	expectNotice(t, c, "last token") // neither "three" nor the batch was published
	checkRefusal(t, postJSON(t, pub.URL+"/query", `mutation { sendNotification(to: "carol", text: "over") { id } }`, key...), http.StatusTooManyRequests, "RATE_LIMITED")
	// Another key of the same tenant has its own bucket.
	if _, err := publishAs(t, pub, "acme-other-0123456789", map[string]any{"scope": "PERSON", "to": "carol", "text": "other key"}); err != nil {
		t.Fatal(err)
	}
	expectNotice(t, c, "other key")
	if got := metric(t, pub, "oshirase_pub_rate_limited_total"); got != 3 {
		t.Fatalf("oshirase_pub_rate_limited_total = %d, want 3", got)
	}
	expectLogged(t, pub, "publish_rate")
}

// Fields nested more than 16 deep are refused on both services before
// validation; 16 deep passes the limit (and fails validation only where
// the schema has no such field).
func TestTooDeepIsRefused(t *testing.T) {
	s := startStack(t)
	deep := func(n int) string {
		return "{ __schema { types { " + strings.Repeat("ofType { ", n-3) + "name" + strings.Repeat(" }", n-3) + " } } }"
	}
	for _, url := range []string{s.pub.URL + "/query", s.sub.URL + "/graphql"} {
		expectRefusal(t, postJSON(t, url, deep(17)), http.StatusOK, "COMPLEXITY_LIMIT_EXCEEDED", "")
		if a := postJSON(t, url, deep(16)); a.Status != http.StatusOK || strings.Contains(string(a.Body), "errors") {
			t.Fatalf("%s: 16 deep: %d %.300s", url, a.Status, a.Body)
		}
	}
	ws := connect(t, s.sub, gqlws.TransportWS)
	subscribeQuery(t, ws, "deep", deep(17))
	expectWSError(t, ws, "deep", "COMPLEXITY_LIMIT_EXCEEDED")
}

// waitCounted waits until sub has counted a live subscription of user's
// personal channel in Redis, which is what pub reads for receivedUsers,
// without publishing anything.
func waitCounted(t *testing.T, r *harness.Redis, tenant, user string) {
	t.Helper()
	ch, err := wire.PersonChannel(tenant, user)
	if err != nil {
		t.Fatal(err)
	}
	rdb := r.Client()
	defer rdb.Close()
	eventually(t, 20*time.Second, "a live subscription of "+user+" counted in Redis", func() bool {
		counts, err := rdb.HGetAll(context.Background(), ch.CountKey()).Result()
		if err != nil {
			return false
		}
		for _, v := range counts { // "<count>:<expiry>" per sub instance
			if n, _, _ := strings.Cut(v, ":"); n != "" && n != "0" {
				return true
			}
		}
		return false
	})
}
