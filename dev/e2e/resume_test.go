package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

const resumeQuery = `subscription($u:String!,$a:String){onNotificationReceived(userName:$u,after:$a){id text scope cursor}}`

// got is one thing a resuming subscription received: a notice with its
// cursor, or an error's code.
type got struct {
	text, cursor, code string
}

// resumeStream is one subscription of bob's, over one protocol, that
// reports what it receives on a channel until closed.
type resumeStream struct {
	out   chan got
	close func()
}

// payloadGot reads a next/data payload of resumeQuery.
func payloadGot(t *testing.T, payload []byte) got {
	var p struct {
		Data *struct {
			N struct{ Text, Cursor string } `json:"onNotificationReceived"`
		} `json:"data"`
		Errors []struct {
			Message    string
			Extensions struct{ Code string }
		}
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Errorf("payload %s: %v", payload, err)
		return got{code: "UNREADABLE"}
	}
	if len(p.Errors) > 0 {
		return got{code: p.Errors[0].Extensions.Code}
	}
	return got{text: p.Data.N.Text, cursor: p.Data.N.Cursor}
}

// sseAfter is openResume's proto for SSE with the cursor in the query's
// after variable rather than in Last-Event-ID.
const sseAfter = "sse+after"

// openResume subscribes bob over proto (a WebSocket subprotocol, "sse" or
// sseAfter), resuming after the cursor after ("" for none). On "sse" the
// cursor goes in the Last-Event-ID header, as an EventSource sends it.
func openResume(t *testing.T, sub *harness.Service, proto, token, user, after string) *resumeStream {
	t.Helper()
	vars := map[string]any{"u": user}
	if after != "" && proto != "sse" {
		vars["a"] = after
	}
	st := &resumeStream{out: make(chan got, 1000)}
	if proto != "sse" && proto != sseAfter {
		c := connectAs(t, sub, proto, token)
		typ := "subscribe"
		if proto == gqlws.LegacyWS {
			typ = "start"
		}
		b, _ := json.Marshal(map[string]any{"id": "r", "type": typ, "payload": map[string]any{"query": resumeQuery, "variables": vars}})
		if err := c.SendRaw(string(b)); err != nil {
			t.Fatal(err)
		}
		go func() {
			defer close(st.out)
			for {
				m, err := c.Next(time.Minute)
				if err != nil || m.Type == "complete" || m.Type == "error" {
					return
				}
				if m.Type == "next" || m.Type == "data" {
					st.out <- payloadGot(t, m.Payload)
				}
			}
		}()
		st.close = c.Close
		return st
	}
	body, _ := json.Marshal(map[string]any{"query": resumeQuery, "variables": vars})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	if after != "" && proto == "sse" {
		req.Header.Set("Last-Event-ID", after)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st.close = func() { cancel(); resp.Body.Close() }
	t.Cleanup(st.close)
	go func() {
		defer close(st.out)
		sc := bufio.NewScanner(resp.Body)
		var id, event, data string
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "":
				if event == "next" {
					g := payloadGot(t, []byte(data))
					if g.code == "" && g.cursor != id {
						t.Errorf("SSE event id %q, its cursor %q", id, g.cursor)
					}
					st.out <- g
				}
				id, event, data = "", "", ""
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
			case strings.HasPrefix(line, "data: "):
				data += line[6:]
			}
		}
	}()
	return st
}

// next returns the next notice that is not a probe (keeping the cursor of
// the last one, probe or not, in *last).
func (st *resumeStream) next(t *testing.T, last *string) got {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case g, ok := <-st.out:
			if !ok {
				t.Fatal("the subscription ended")
			}
			if g.code != "" {
				return g
			}
			if last != nil {
				*last = g.cursor
			}
			if strings.HasPrefix(g.text, "probe:") {
				continue
			}
			return g
		case <-timeout:
			t.Fatal("nothing within 20s")
		}
	}
}

// ended waits until the stream ends (its server went away), failing on
// any notice but a probe meanwhile.
func (st *resumeStream) ended(t *testing.T) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case g, ok := <-st.out:
			if !ok {
				return
			}
			if !strings.HasPrefix(g.text, "probe:") {
				t.Fatalf("got %+v, want the stream to end", g)
			}
		case <-timeout:
			t.Fatal("the stream did not end within 20s")
		}
	}
}

// texts returns the texts of the next n notices (see next), failing on an
// error.
func (st *resumeStream) texts(t *testing.T, last *string, n int) []string {
	t.Helper()
	var texts []string
	for range n {
		g := st.next(t, last)
		if g.code != "" {
			t.Fatalf("resume failed with %s after %q", g.code, texts)
		}
		texts = append(texts, g.text)
	}
	return texts
}

// Bob's subscription, cut off while K notices of every scope are published,
// comes back with its last cursor and gets exactly those K, each channel's
// in order, then the ones published while the replay ran, then live ones —
// on graphql-transport-ws, legacy graphql-ws and SSE, through the binaries.
func TestResumeEndToEnd(t *testing.T) {
	for _, proto := range []string{gqlws.TransportWS, gqlws.LegacyWS, "sse"} {
		t.Run(proto, func(t *testing.T) {
			s := jwtStack(t)
			bob := userToken(t, "bob", "acme", "s1")
			const acme = "acme-key-0123456789"
			p := &notices{pub: s.pub, user: "bob"}

			st := openResume(t, s.sub, proto, bob, "bob", "")
			waitReceiversAs(t, s.pub, acme, map[string]any{"scope": "PERSON", "to": "bob"}, 1)
			var last string
			first := p.mine(t, 0)
			if g := st.next(t, &last); g.text != first || g.cursor == "" {
				t.Fatalf("got %+v, want %s with a cursor", g, first)
			}
			st.close()
			waitReceiversAs(t, s.pub, acme, map[string]any{"scope": "PERSON", "to": "bob"}, 0)

			const k = 12
			var want []string
			for i := range k {
				want = append(want, p.mine(t, i))
				p.others(t)
			}
			// Notices published while the replay runs come after it, once.
			var wg sync.WaitGroup
			concurrent := make(chan string, k)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range k {
					concurrent <- p.mine(t, i)
				}
				close(concurrent)
			}()
			st = openResume(t, s.sub, proto, bob, "bob", last)
			gotTexts := st.texts(t, &last, 2*k)
			wg.Wait()
			for text := range concurrent {
				want = append(want, text)
			}
			// Those published during the replay came in it or live: either
			// way once each, in order.
			checkScopesInOrder(t, gotTexts, want)
			live := p.mine(t, 2)
			if g := st.next(t, &last); g.text != live {
				t.Fatalf("after the replay got %+v, want the live %s", g, live)
			}
			st.close()

			// The list's newest edge cursor continues exactly after it.
			page, code := listNotifications(t, s.sub, bob, "bob", 1, nil)
			if code != "" || len(page.Edges) != 1 {
				t.Fatalf("list: %+v %s", page, code)
			}
			st = openResume(t, s.sub, proto, bob, "bob", page.Edges[0].Cursor)
			waitReceiversAs(t, s.pub, acme, map[string]any{"scope": "PERSON", "to": "bob"}, 1)
			after := p.mine(t, 1)
			if g := st.next(t, nil); g.text != after {
				t.Fatalf("resumed after the list's newest edge: got %+v, want %s", g, after)
			}
			st.close()

			// Cursors that are not bob's to resume are refused.
			for _, tc := range []struct{ name, token, after, code string }{
				{"garbage", bob, "garbage", "BAD_USER_INPUT"},
				{"another tenant's", userToken(t, "bob", "globex", "s1"), last, "FORBIDDEN"},
			} {
				st := openResume(t, s.sub, proto, tc.token, "bob", tc.after)
				if g := st.next(t, nil); g.code != tc.code {
					t.Errorf("%s cursor: got %+v, want %s", tc.name, g, tc.code)
				}
				st.close()
			}
		})
	}
}

// notices publishes, through pub, notices for user (of acme, in store s1)
// of every scope, and notices the user must not get; each has a text of
// its own that starts with its scope ("STORE-7").
type notices struct {
	pub  *harness.Service
	user string
	mu   sync.Mutex
	n    int
}

// publish publishes in with key and returns its text.
func (p *notices) publish(t *testing.T, key string, in map[string]any) string {
	t.Helper()
	p.mu.Lock()
	p.n++
	text := fmt.Sprintf("%v-%d", in["scope"], p.n)
	p.mu.Unlock()
	in["text"] = text
	if _, err := publishAs(t, p.pub, key, in); err != nil {
		t.Errorf("publish %v: %v", in, err)
	}
	return text
}

// mine publishes the user's i-th notice: PERSON, STORE, COMPANY and PUBLIC
// in turn.
func (p *notices) mine(t *testing.T, i int) string {
	t.Helper()
	const acme = "acme-key-0123456789"
	switch i % 4 {
	case 0:
		return p.publish(t, acme, map[string]any{"scope": "PERSON", "to": p.user})
	case 1:
		return p.publish(t, acme, map[string]any{"scope": "STORE", "to": "s1"})
	case 2:
		return p.publish(t, acme, map[string]any{"scope": "COMPANY"})
	}
	return p.publish(t, platformKey, map[string]any{"scope": "PUBLIC"})
}

// others publishes notices the user must not get: alice's, another
// store's, and another tenant's user's of the same name.
func (p *notices) others(t *testing.T) {
	t.Helper()
	p.publish(t, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "alice"})
	p.publish(t, "acme-key-0123456789", map[string]any{"scope": "STORE", "to": "s2"})
	p.publish(t, "globex-key-0123456789", map[string]any{"scope": "PERSON", "to": p.user})
}

// checkScopesInOrder: got holds exactly want, once each, and each scope's
// notices in publish order (across channels a replay follows the
// histories' ids, which order notices of one millisecond by scope).
func checkScopesInOrder(t *testing.T, got, want []string) {
	t.Helper()
	idx := map[string]int{}
	for i, w := range want {
		idx[w] = i
	}
	last := map[string]int{}
	for _, g := range got {
		i, ok := idx[g]
		if !ok {
			t.Fatalf("got %q, not one of %q (all: %q)", g, want, got)
		}
		delete(idx, g)
		scope := strings.SplitN(g, "-", 2)[0]
		if p, seen := last[scope]; seen && i < p {
			t.Fatalf("%q out of its scope's order: %q", g, got)
		}
		last[scope] = i
	}
	if len(idx) > 0 {
		t.Fatalf("missing %v: got %q", idx, got)
	}
}
