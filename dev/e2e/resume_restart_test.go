package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// A subscription cut off by a sub restart, and then by a Redis restart that
// kept its data (an append-only file, as docker-compose.yml runs Redis),
// resumes from its last cursor with exactly the notices it missed, in order.
func TestResumeAcrossRestarts(t *testing.T) {
	r := redistest.StartPersistent(t)
	common := []string{"AUTH_MODE=jwt", "JWT_SECRET=" + jwtSecret, "ALLOWED_ORIGINS=" + frontend}
	const acme = "acme-key-0123456789"
	pub := harness.StartPub(t, r, append(common, "PUBLISHER_API_KEYS="+acme+":acme")...)
	sub := harness.StartSub(t, r, common...)
	bob := userToken(t, "bob", "acme", "")
	person := map[string]any{"scope": "PERSON", "to": "bob"}
	send := func(text string) {
		t.Helper()
		in := map[string]any{"text": text}
		for k, v := range person {
			in[k] = v
		}
		if _, err := publishAs(t, pub, acme, in); err != nil {
			t.Fatalf("publish %s: %v", text, err)
		}
	}
	expect := func(st *resumeStream, last *string, texts ...string) {
		t.Helper()
		for _, want := range texts {
			if g := st.next(t, last); g.text != want || g.code != "" {
				t.Fatalf("got %+v, want %s", g, want)
			}
		}
	}

	st := openResume(t, sub, gqlws.TransportWS, bob, "bob", "")
	waitReceiversAs(t, pub, acme, person, 1)
	var last string
	send("first")
	expect(st, &last, "first")
	st.close()

	// sub restarts (a deploy) while three notices go out.
	sub.Stop()
	missed := []string{}
	for i := range 3 {
		missed = append(missed, fmt.Sprintf("during the sub restart %d", i))
		send(missed[i])
	}
	sub.Start()
	sub.WaitReady(20 * time.Second)
	st = openResume(t, sub, gqlws.TransportWS, bob, "bob", last)
	expect(st, &last, missed...)
	st.close()

	// Redis is killed and comes back from its append-only file.
	missed = missed[:0]
	for i := range 3 {
		missed = append(missed, fmt.Sprintf("before the redis restart %d", i))
		send(missed[i])
	}
	r.Stop()
	r.Start()
	sub.WaitReady(20 * time.Second)
	st = openResume(t, sub, gqlws.TransportWS, bob, "bob", last)
	expect(st, &last, missed...)
	waitReceiversAs(t, pub, acme, person, 1)
	send("live again")
	expect(st, &last, "live again")
}

// After a Redis restart that lost its data, an old cursor is refused with
// CURSOR_EXPIRED — never replayed wrong.
func TestResumeAfterRedisLostItsData(t *testing.T) {
	s := jwtStack(t)
	const acme = "acme-key-0123456789"
	bob := userToken(t, "bob", "acme", "")
	person := map[string]any{"scope": "PERSON", "to": "bob"}
	st := openResume(t, s.sub, gqlws.TransportWS, bob, "bob", "")
	waitReceiversAs(t, s.pub, acme, person, 1)
	var last string
	if _, err := publishAs(t, s.pub, acme, map[string]any{"scope": "PERSON", "to": "bob", "text": "first"}); err != nil {
		t.Fatal(err)
	}
	if g := st.next(t, &last); g.text != "first" || last == "" {
		t.Fatalf("got %+v", g)
	}
	st.close()
	s.redis.Stop()
	s.redis.Start() // empty: no persistence
	s.sub.WaitReady(20 * time.Second)
	if _, err := publishAs(t, s.pub, acme, map[string]any{"scope": "PERSON", "to": "bob", "text": "after the loss"}); err != nil {
		t.Fatal(err)
	}
	st = openResume(t, s.sub, gqlws.TransportWS, bob, "bob", last)
	if g := st.next(t, nil); g.code != "CURSOR_EXPIRED" {
		t.Fatalf("resuming across a Redis that lost its data: got %+v, want CURSOR_EXPIRED", g)
	}
}
