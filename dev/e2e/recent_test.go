package e2e_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

const notificationsQuery = `query($u:String!,$first:Int,$after:String){
  notifications(userName:$u,first:$first,after:$after){
    edges{cursor node{id text timestamp scope}}
    pageInfo{hasNextPage hasPreviousPage startCursor endCursor}
  }
}`

type listEdge struct {
	Cursor string
	Node   struct {
		ID        string
		Text      string
		Timestamp int64
		Scope     string
	}
}

type listPage struct {
	Edges    []listEdge
	PageInfo struct {
		HasNextPage     bool
		HasPreviousPage bool
		StartCursor     *string
		EndCursor       *string
	}
}

// listNotifications asks sub for a page of user's notices; token "" sends
// none (AUTH_MODE=none). It returns the page, or the error's code.
func listNotifications(t *testing.T, sub *harness.Service, token, user string, first int, after *string) (*listPage, string) {
	t.Helper()
	vars := map[string]any{"u": user, "first": first}
	if after != nil {
		vars["after"] = *after
	}
	var header []string
	if token != "" {
		header = []string{"Authorization", "Bearer " + token}
	}
	r, err := sub.Post("/graphql", notificationsQuery, vars, header...)
	if err != nil {
		t.Fatalf("notifications: %v", err)
	}
	if len(r.Errors) > 0 {
		code, _ := r.Errors[0].Extensions["code"].(string)
		if after != nil && len(*after) > 8 && strings.Contains(r.Errors[0].Message, *after) {
			t.Fatalf("the error echoes the cursor: %s", r.Errors[0].Message)
		}
		return nil, code
	}
	var d struct{ Notifications listPage }
	if err := json.Unmarshal(r.Data, &d); err != nil {
		t.Fatal(err)
	}
	return &d.Notifications, ""
}

// listAll pages through user's notices, first at a time, and returns the
// edges in the order served.
func listAll(t *testing.T, sub *harness.Service, token, user string, first int) []listEdge {
	t.Helper()
	var all []listEdge
	var after *string
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		p, code := listNotifications(t, sub, token, user, first, after)
		if code != "" {
			t.Fatalf("page %d: error %s", pages, code)
		}
		if p.PageInfo.HasPreviousPage {
			t.Fatal("hasPreviousPage on a forward page")
		}
		if len(p.Edges) > first {
			t.Fatalf("page of %d edges for first %d", len(p.Edges), first)
		}
		if len(p.Edges) > 0 && (p.PageInfo.EndCursor == nil || *p.PageInfo.EndCursor != p.Edges[len(p.Edges)-1].Cursor ||
			*p.PageInfo.StartCursor != p.Edges[0].Cursor) {
			t.Fatalf("page %d: start/end cursors are not the edges'", pages)
		}
		all = append(all, p.Edges...)
		if !p.PageInfo.HasNextPage {
			return all
		}
		after = p.PageInfo.EndCursor
	}
}

// The recent list end to end: notices of every scope, published through
// pub, listed by sub newest first, paged to the end without duplicates or
// gaps, only what the subscriber may read; foreign, forged and garbage
// cursors refused with the codes the README gives.
func TestRecentListEndToEnd(t *testing.T) {
	s := jwtStack(t)
	const k = 6
	var want []string // bob's notices, in publish order
	publish := func(key string, in map[string]any, mine bool) {
		t.Helper()
		text := fmt.Sprintf("%v-%v-%d", in["scope"], in["to"], len(want))
		in["text"] = text
		if _, err := publishAs(t, s.pub, key, in); err != nil {
			t.Fatalf("publish %v: %v", in, err)
		}
		if mine {
			want = append(want, text)
		}
		// Distinct milliseconds: the merged order is then the publish order.
		time.Sleep(3 * time.Millisecond)
	}
	for i := range k {
		publish("acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob"}, true)
		publish("acme-key-0123456789", map[string]any{"scope": "STORE", "to": "s1"}, true)
		publish("acme-key-0123456789", map[string]any{"scope": "COMPANY"}, true)
		publish(platformKey, map[string]any{"scope": "PUBLIC"}, true)
		if i%2 == 0 { // notices bob must never see
			publish("acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "alice"}, false)
			publish("acme-key-0123456789", map[string]any{"scope": "STORE", "to": "s2"}, false)
			publish("globex-key-0123456789", map[string]any{"scope": "COMPANY"}, false)
			publish("globex-key-0123456789", map[string]any{"scope": "PERSON", "to": "bob"}, false)
		}
	}
	bob := userToken(t, "bob", "acme", "s1")

	edges := listAll(t, s.sub, bob, "bob", 5)
	var got []string
	seen := map[string]bool{}
	for _, e := range edges {
		if seen[e.Node.ID] || seen[e.Cursor] {
			t.Fatalf("served twice: %+v", e)
		}
		seen[e.Node.ID], seen[e.Cursor] = true, true
		got = append(got, e.Node.Text)
		if scope := strings.SplitN(e.Node.Text, "-", 2)[0]; scope != e.Node.Scope || e.Node.Timestamp < time.Now().Add(-time.Hour).Unix() {
			t.Fatalf("edge %+v: wrong scope or timestamp", e)
		}
	}
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Fatalf("bob's list, paged by 5:\n got %v\nwant %v", got, want)
	}
	if all := listAll(t, s.sub, bob, "bob", 100); len(all) != len(want) || all[0].Cursor != edges[0].Cursor {
		t.Fatal("one page of 100 differs from pages of 5")
	}

	// Cursors stay with the audience they were made for.
	cur := edges[len(edges)/2].Cursor
	flipped := []byte(cur)
	flipped[len(flipped)/2] ^= 0x01
	for _, tc := range []struct {
		name, token, user, after, code string
	}{
		{"another user's cursor", userToken(t, "alice", "acme", "s1"), "alice", cur, "FORBIDDEN"},
		{"another tenant's cursor", userToken(t, "bob", "globex", "s1"), "bob", cur, "FORBIDDEN"},
		{"someone else's list", bob, "alice", cur, "FORBIDDEN"},
		{"a garbage cursor", bob, "bob", "garbage", "BAD_USER_INPUT"},
		{"a changed cursor", bob, "bob", string(flipped), "BAD_USER_INPUT"},
		{"a huge cursor", bob, "bob", strings.Repeat("QUFB", 4096), "BAD_USER_INPUT"},
		{"a cursor after the store changed", userToken(t, "bob", "acme", "s2"), "bob", cur, "CURSOR_EXPIRED"},
	} {
		after := tc.after
		if p, code := listNotifications(t, s.sub, tc.token, tc.user, 5, &after); code != tc.code {
			t.Errorf("%s: %v, code %q; want %s", tc.name, p, code, tc.code)
		}
	}
	if _, code := listNotifications(t, s.sub, bob, "bob", -1, nil); code != "BAD_USER_INPUT" {
		t.Errorf("first -1: code %q", code)
	}

	// A Redis that lost its data: the cursor is refused, never misread.
	s.redis.Stop()
	s.redis.Start()
	s.sub.WaitReady(15 * time.Second)
	if _, code := listNotifications(t, s.sub, bob, "bob", 5, &cur); code != "CURSOR_EXPIRED" {
		t.Fatalf("a cursor from before Redis lost its data: code %q, want CURSOR_EXPIRED", code)
	}
	if p, code := listNotifications(t, s.sub, bob, "bob", 5, nil); code != "" || len(p.Edges) != 0 {
		t.Fatalf("the list after Redis lost its data: %+v %q", p, code)
	}
}

// HISTORY_SIZE=0: nothing is recorded, the list is empty.
func TestRecentListWithHistoryOff(t *testing.T) {
	r := harness.StartRedis(t)
	pub := harness.StartPub(t, r, "HISTORY_SIZE=0")
	sub := harness.StartSub(t, r, "HISTORY_SIZE=0")
	for i := range 3 {
		send(t, pub, "bob", fmt.Sprint("hello ", i))
	}
	p, code := listNotifications(t, sub, "", "bob", 10, nil)
	if code != "" || len(p.Edges) != 0 || p.PageInfo.HasNextPage || p.PageInfo.EndCursor != nil {
		t.Fatalf("history off: %+v %q", p, code)
	}
	// And on: the same notices are listed (AUTH_MODE=none: userName is believed).
	pub2 := harness.StartPub(t, r)
	send(t, pub2, "bob", "kept")
	p, code = listNotifications(t, sub, "", "bob", 10, nil)
	if code != "" || len(p.Edges) != 0 {
		t.Fatalf("sub with history off listed %+v %q", p, code)
	}
	sub2 := harness.StartSub(t, r)
	p, code = listNotifications(t, sub2, "", "bob", 10, nil)
	if code != "" || len(p.Edges) != 1 || p.Edges[0].Node.Text != "kept" || p.Edges[0].Node.Scope != "PERSON" {
		t.Fatalf("history on: %+v %q", p, code)
	}
}

// A page load with nothing to list yet: the first page's startCursor still
// says where the read stood, and a subscription after it gets, once each,
// what was published in between — on each protocol.
func TestEmptyListThenSubscribeMissesNothing(t *testing.T) {
	s := jwtStack(t)
	bob := userToken(t, "bob", "acme", "s1")
	p, code := listNotifications(t, s.sub, bob, "bob", 20, nil)
	if code != "" || len(p.Edges) != 0 || p.PageInfo.StartCursor == nil {
		t.Fatalf("the empty list: %+v %s, want no edges and a startCursor", p, code)
	}
	var want []string
	for i, in := range []map[string]any{{"scope": "PERSON", "to": "bob"}, {"scope": "STORE", "to": "s1"}, {"scope": "COMPANY"}, {"scope": "PERSON", "to": "bob"}} {
		in["text"] = fmt.Sprintf("%v-%d", in["scope"], i)
		if _, err := publishAs(t, s.pub, "acme-key-0123456789", in); err != nil {
			t.Fatal(err)
		}
		want = append(want, in["text"].(string))
	}
	for _, proto := range []string{gqlws.TransportWS, gqlws.LegacyWS, "sse"} {
		st := openResume(t, s.sub, proto, bob, "bob", *p.PageInfo.StartCursor)
		var got []string
		for range want {
			got = append(got, st.next(t, nil).text)
		}
		checkScopesInOrder(t, got, want)
		st.close()
	}
}
