package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/dev/gqlws"
)

// A subscription cut off by a sub restart (SIGKILL, then started again),
// and away across a Redis restart that kept its data (an append-only file,
// as docker-compose.yml runs Redis), resumes from its last cursor with
// exactly the notices of every scope it missed, once each and each
// channel's in order, then gets live notices again — on
// graphql-transport-ws, legacy graphql-ws, and SSE with the cursor as
// Last-Event-ID and as after. The protocols share one Redis, pub and sub,
// each with a user of its own: a killed sub leaves its users' counts behind
// (until COUNT_TTL), so a user's count no longer tells when a subscription
// is live.
func TestResumeAcrossRestarts(t *testing.T) {
	r := redistest.StartPersistent(t)
	s := jwtStackOn(t, r)
	const acme = "acme-key-0123456789"
	for i, proto := range []string{gqlws.TransportWS, gqlws.LegacyWS, "sse", sseAfter} {
		t.Run(proto, func(t *testing.T) {
			user := fmt.Sprintf("bob%d", i)
			token := userToken(t, user, "acme", "s1")
			p := &notices{pub: s.pub, user: user}
			// away publishes k of the user's notices, every scope in turn,
			// among others' they must not get, and returns the user's.
			away := func(k int) []string {
				t.Helper()
				var want []string
				for i := range k {
					want = append(want, p.mine(t, i))
					p.others(t)
				}
				return want
			}
			// resume resumes after last and expects exactly want, then a
			// live notice published once the replay is through.
			var last string
			resume := func(want []string) {
				t.Helper()
				st := openResume(t, s.sub, proto, token, user, last)
				checkScopesInOrder(t, st.texts(t, &last, len(want)), want)
				live := p.mine(t, len(want))
				if g := st.next(t, &last); g.text != live {
					t.Fatalf("after the replay got %+v, want the live %s", g, live)
				}
				st.close()
			}

			// An earlier protocol that failed half way may have left them down.
			if !r.Running() {
				r.Start()
			}
			select {
			case <-s.sub.Exited():
				s.sub.Start()
			default:
			}
			st := openResume(t, s.sub, proto, token, user, "")
			waitReceiversAs(t, s.pub, acme, map[string]any{"scope": "PERSON", "to": user}, 1)
			if first := p.mine(t, 0); st.next(t, &last).text != first {
				t.Fatalf("the first notice, %s, did not come first", first)
			}

			// (a) sub crashes under the subscription; notices go out while
			// it is down, and it starts again.
			s.sub.Kill()
			st.ended(t)
			want := away(8)
			s.sub.Start()
			resume(want)

			// (b) Away again: notices go out, Redis is killed and comes back
			// from its append-only file, more notices go out.
			want = away(4)
			r.Stop()
			r.Start()
			s.sub.WaitReady(20 * time.Second)
			s.pub.WaitReady(20 * time.Second)
			want = append(want, away(4)...)
			resume(want)
		})
	}
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
