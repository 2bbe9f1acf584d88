package recent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/sub/internal/cursor"
	"github.com/oshirase/oshirase/sub/internal/recent"
	"github.com/oshirase/oshirase/wire"
)

type fixture struct {
	srv    *redistest.Server
	bus    *bus.Redis
	lister *recent.Lister
}

func setup(t *testing.T, size int) fixture {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	b, err := bus.NewRedis(bus.Config{Client: rdb, HistorySize: size, HistoryTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return fixture{srv, b, recent.New(recent.Config{History: b, Logger: log})}
}

func audience(tenant, user, store string) []wire.Channel {
	person, _ := wire.PersonChannel(tenant, user)
	company, _ := wire.NewChannel(tenant, wire.ScopeCompany, "")
	chs := []wire.Channel{person, company, wire.PublicChannel()}
	if store != "" {
		s, _ := wire.NewChannel(tenant, wire.ScopeStore, store)
		chs = append(chs, s)
	}
	return chs
}

// publishAll publishes n notices spread over chs from several goroutines
// at once (so that notices on different channels share milliseconds) and
// returns their texts.
func publishAll(t *testing.T, b *bus.Redis, chs []wire.Channel, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for i, ch := range chs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < n; j += len(chs) {
				m, _ := wire.NewMessage(fmt.Sprint("n", j), wire.ScopePerson, time.Now())
				payload, _ := m.Encode()
				if _, err := b.Publish(context.Background(), ch, payload); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// merged reads every channel's whole history and orders it newest first.
func merged(t *testing.T, b *bus.Redis, chs []wire.Channel) []string {
	t.Helper()
	heads, err := b.Head(context.Background(), chs)
	if err != nil {
		t.Fatal(err)
	}
	from := make([]bus.Position, len(chs))
	for i := range from {
		from[i].Epoch = heads[i].Epoch
	}
	all, err := b.Since(context.Background(), chs, from)
	if err != nil {
		t.Fatal(err)
	}
	type it struct {
		id   bus.StreamID
		kind int
		text string
	}
	var items []it
	for i, entries := range all {
		for _, e := range entries {
			m, _ := wire.Decode(e.Payload)
			items = append(items, it{e.Pos.ID, cursor.Kind(chs[i]), m.Text})
		}
	}
	slices.SortFunc(items, func(a, b it) int {
		if cursor.Before(a.id, a.kind, b.id, b.kind) {
			return 1
		}
		return -1
	})
	var out []string
	for _, x := range items {
		out = append(out, x.text)
	}
	return out
}

func list(t *testing.T, l *recent.Lister, chs []wire.Channel, first int, after *string) *recent.Connection {
	t.Helper()
	c, err := l.List(context.Background(), chs, &first, after)
	if err != nil {
		t.Fatalf("List(first %d): %v", first, err)
	}
	return c
}

// Paging to the end reads every notice of every channel once, newest
// first in the merged order; every edge's cursor resumes exactly after
// its notice.
func TestListPagesThroughEverything(t *testing.T) {
	f := setup(t, 100)
	chs := audience("acme", "bob", "s1")
	publishAll(t, f.bus, chs, 60)
	want := merged(t, f.bus, chs)
	if len(want) != 60 {
		t.Fatalf("%d notices recorded", len(want))
	}

	var got []string
	var after *string
	pages := 0
	for {
		c := list(t, f.lister, chs, 7, after)
		pages++
		for i, e := range c.Edges {
			got = append(got, e.Node.Text)
			// Resuming after this edge reads exactly the notices above it.
			cur, err := cursor.Decode(e.Cursor, chs)
			if err != nil {
				t.Fatal(err)
			}
			newer, err := f.bus.Since(context.Background(), chs, cur.Pos)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, entries := range newer {
				n += len(entries)
			}
			if k := len(got) - 1; n != k {
				t.Fatalf("page %d edge %d (%s): %d notices after its cursor, want %d", pages, i, e.Node.Text, n, k)
			}
		}
		if len(c.Edges) > 0 && *c.PageInfo.EndCursor != c.Edges[len(c.Edges)-1].Cursor {
			t.Fatal("endCursor is not the last edge's cursor")
		}
		if !c.PageInfo.HasNextPage {
			break
		}
		if len(c.Edges) != 7 {
			t.Fatalf("page %d has %d edges and a next page", pages, len(c.Edges))
		}
		after = c.PageInfo.EndCursor
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged %v\nwant  %v", got, want)
	}
	if pages != 9 {
		t.Fatalf("%d pages of 7 for 60 notices", pages)
	}
}

func TestListFirst(t *testing.T) {
	f := setup(t, 200)
	chs := audience("acme", "bob", "")
	publishAll(t, f.bus, chs[:1], 150)
	c, err := f.lister.List(context.Background(), chs, nil, nil)
	if err != nil || len(c.Edges) != 20 || !c.PageInfo.HasNextPage {
		t.Fatalf("default page: %d edges, %v", len(c.Edges), err)
	}
	if c := list(t, f.lister, chs, 1000, nil); len(c.Edges) != 100 || !c.PageInfo.HasNextPage {
		t.Fatalf("first 1000: %d edges, want the cap of 100", len(c.Edges))
	}
	if c := list(t, f.lister, chs, 0, nil); len(c.Edges) != 0 || !c.PageInfo.HasNextPage || c.PageInfo.EndCursor != nil {
		t.Fatalf("first 0: %+v", c.PageInfo)
	}
	neg := -1
	if _, err := f.lister.List(context.Background(), chs, &neg, nil); !errors.Is(err, errkind.ErrBadInput) {
		t.Fatalf("first -1: %v", err)
	}
	if c := list(t, f.lister, audience("acme", "nobody", ""), 5, nil); len(c.Edges) != 0 || c.PageInfo.HasNextPage {
		t.Fatalf("a user with no notices: %+v", c)
	}
}

func TestListRefusesOthersCursors(t *testing.T) {
	f := setup(t, 100)
	bob := audience("acme", "bob", "")
	publishAll(t, f.bus, bob, 5)
	c := list(t, f.lister, bob, 2, nil)
	for _, tc := range []struct {
		name  string
		chs   []wire.Channel
		after string
		want  error
	}{
		{"another user", audience("acme", "alice", ""), *c.PageInfo.EndCursor, errkind.ErrForbidden},
		{"another tenant", audience("globex", "bob", ""), *c.PageInfo.EndCursor, errkind.ErrForbidden},
		{"garbage", bob, "garbage", errkind.ErrBadInput},
	} {
		if _, err := f.lister.List(context.Background(), tc.chs, nil, &tc.after); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// A cursor from before Redis lost its data is refused, never read against
// the new history.
func TestListAfterRedisLostItsData(t *testing.T) {
	f := setup(t, 100)
	bob := audience("acme", "bob", "")
	publishAll(t, f.bus, bob, 5)
	c := list(t, f.lister, bob, 2, nil)
	f.srv.Stop()
	f.srv.Start()
	publishAll(t, f.bus, bob, 5)
	if _, err := f.lister.List(context.Background(), bob, nil, c.PageInfo.EndCursor); !errors.Is(err, errkind.ErrCursorExpired) {
		t.Fatalf("List after a cursor of the lost history: %v, want CURSOR_EXPIRED", err)
	}
}

func TestListWithHistoryOff(t *testing.T) {
	f := setup(t, 0)
	bob := audience("acme", "bob", "")
	publishAll(t, f.bus, bob, 5)
	if c := list(t, f.lister, bob, 10, nil); len(c.Edges) != 0 || c.PageInfo.HasNextPage {
		t.Fatalf("history off: %+v", c)
	}
}

// resumed reads what a subscription after cursor s would replay: every
// notice after its positions, per channel.
func resumed(t *testing.T, b *bus.Redis, chs []wire.Channel, s string) []string {
	t.Helper()
	c, err := cursor.Decode(s, chs)
	if err != nil {
		t.Fatal(err)
	}
	all, err := b.Since(context.Background(), chs, c.Pos)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, entries := range all {
		for _, e := range entries {
			m, _ := wire.Decode(e.Payload)
			out = append(out, m.Text)
		}
	}
	return out
}

// A page load lists, then subscribes after the first page's startCursor:
// whatever is published after the list read is replayed, nothing listed
// is. With nothing to list yet, startCursor is still there. A notice
// published right after the read on a channel ordered before the newest
// notice's (the person channel, after a public notice) often shares its
// millisecond, and a stream id at or before the newest notice's: the
// cursor still leaves it to the subscription.
func TestFirstPageStartCursorMissesNothingPublishedAfter(t *testing.T) {
	f := setup(t, 1000)
	chs := audience("acme", "bob", "s1")
	empty := list(t, f.lister, chs, 5, nil)
	if len(empty.Edges) != 0 || empty.PageInfo.StartCursor == nil {
		t.Fatalf("empty first page: %d edges, startCursor %v", len(empty.Edges), empty.PageInfo.StartCursor)
	}
	publishAll(t, f.bus, chs, 8)
	if got := resumed(t, f.bus, chs, *empty.PageInfo.StartCursor); len(got) != 8 {
		t.Fatalf("after the empty page's startCursor: %d notices, want the 8 published since", len(got))
	}
	if again := list(t, f.lister, chs, 5, empty.PageInfo.StartCursor); len(again.Edges) != 0 {
		t.Fatalf("older than the empty page's startCursor: %d notices", len(again.Edges))
	}

	person, public := chs[0], chs[2]
	sameMS := 0
	for i := range 200 {
		m, _ := wire.NewMessage(fmt.Sprint("public ", i), wire.ScopePublic, time.Now())
		payload, _ := m.Encode()
		pubID, err := f.bus.Publish(context.Background(), public, payload)
		if err != nil {
			t.Fatal(err)
		}
		page := list(t, f.lister, chs, 1, nil)
		m, _ = wire.NewMessage(fmt.Sprint("person ", i), wire.ScopePerson, time.Now())
		payload, _ = m.Encode()
		personID, err := f.bus.Publish(context.Background(), person, payload)
		if err != nil {
			t.Fatal(err)
		}
		if personID.Pos.ID.Compare(pubID.Pos.ID) <= 0 {
			sameMS++
		}
		if page.Edges[0].Node.Text != fmt.Sprint("public ", i) || page.PageInfo.StartCursor == nil || *page.PageInfo.StartCursor != page.Edges[0].Cursor {
			t.Fatalf("round %d: newest edge %q, startCursor %v", i, page.Edges[0].Node.Text, page.PageInfo.StartCursor)
		}
		if got := resumed(t, f.bus, chs, *page.PageInfo.StartCursor); !slices.Equal(got, []string{m.Text}) {
			t.Fatalf("round %d: after the newest edge: %q, want only %q (its id %v, the public notice's %v)", i, got, m.Text, personID.Pos.ID, pubID.Pos.ID)
		}
	}
	t.Logf("%d of 200 person notices had an id at or before the listed public notice's", sameMS)
}
