package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/wire"
)

func withHistory(size int, ttl time.Duration) func(*bus.Config) {
	return func(c *bus.Config) { c.HistorySize, c.HistoryTTL = size, ttl }
}

// publishTexts publishes one notice per text and returns where each went.
func publishTexts(t *testing.T, p bus.Publisher, ch wire.Channel, texts ...string) []bus.Published {
	t.Helper()
	out := make([]bus.Published, len(texts))
	for i, text := range texts {
		m, _ := wire.NewMessage(text, wire.ScopePerson, time.Now())
		payload, _ := m.Encode()
		res, err := p.Publish(context.Background(), ch, payload)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = res
	}
	return out
}

// textsOf decodes entries, checks that each carries its own position, and
// returns their texts in order.
func textsOf(t *testing.T, entries []bus.Entry) []string {
	t.Helper()
	out := make([]string, len(entries))
	for i, e := range entries {
		m, err := wire.Decode(e.Payload)
		if err != nil {
			t.Fatalf("entry %d: %v (%s)", i, err, e.Payload)
		}
		if m.Pos != e.Pos.ID.String() || m.Epoch != e.Pos.Epoch || m.Epoch == "" {
			t.Fatalf("entry %d at %+v carries p=%q e=%q", i, e.Pos, m.Pos, m.Epoch)
		}
		out[i] = m.Text
	}
	return out
}

func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprint(prefix, i))
	}
	return out
}

func since(t *testing.T, h bus.History, ch wire.Channel, pos bus.Position) ([]bus.Entry, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := h.Since(ctx, []wire.Channel{ch}, []bus.Position{pos})
	if err != nil {
		return nil, err
	}
	if len(got) != 1 {
		t.Fatalf("Since answered %d channels for 1", len(got))
	}
	return got[0], nil
}

func mustSince(t *testing.T, h bus.History, ch wire.Channel, pos bus.Position) []string {
	t.Helper()
	entries, err := since(t, h, ch, pos)
	if err != nil {
		t.Fatalf("Since(%+v): %v", pos, err)
	}
	return textsOf(t, entries)
}

func expectExpired(t *testing.T, h bus.History, ch wire.Channel, pos bus.Position, why string) {
	t.Helper()
	entries, err := since(t, h, ch, pos)
	if !errors.Is(err, bus.ErrCursorExpired) {
		t.Fatalf("%s: Since(%+v) = %d entries, %v; want ErrCursorExpired", why, pos, len(entries), err)
	}
}

func head(t *testing.T, h bus.History, ch wire.Channel) bus.Position {
	t.Helper()
	pos, err := h.Head(context.Background(), []wire.Channel{ch})
	if err != nil {
		t.Fatal(err)
	}
	return pos[0]
}

// Every notice published is recorded; the live copy and the recorded one
// are the same bytes, carrying the notice's position; Since reads exactly
// what came after a position, in order.
func TestHistoryRecordsEveryNoticeWithItsPosition(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		in := newInbox()
		b := instanceWith(t, d, in, withHistory(100, time.Hour))
		ch, _ := wire.PersonChannel("acme", "bob")
		if err := b.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		start := head(t, b, ch)
		if start.Epoch == "" || !start.ID.IsZero() {
			t.Fatalf("head of a new channel = %+v, want an epoch at 0-0", start)
		}
		pubs := publishTexts(t, b, ch, numbered("n", 1, 5)...)
		for i, p := range pubs {
			if p.Receivers != 1 || p.Pos.Epoch != start.Epoch || p.Pos.ID.IsZero() {
				t.Fatalf("publish %d = %+v, want 1 receiver in epoch %q", i, p, start.Epoch)
			}
			if i > 0 && p.Pos.ID.Compare(pubs[i-1].Pos.ID) <= 0 {
				t.Fatalf("ids not increasing: %v after %v", p.Pos.ID, pubs[i-1].Pos.ID)
			}
		}
		if got := head(t, b, ch); got != pubs[4].Pos {
			t.Fatalf("head = %+v, want the last publish %+v", got, pubs[4].Pos)
		}

		all, err := since(t, b, ch, start)
		if err != nil {
			t.Fatal(err)
		}
		if got := textsOf(t, all); !slices.Equal(got, numbered("n", 1, 5)) {
			t.Fatalf("Since(start) = %v", got)
		}
		waitFor(t, "live copies", func() bool { return in.count(ch) == 5 })
		for i, live := range in.got(ch) {
			if live != string(all[i].Payload) {
				t.Fatalf("live copy %d differs from the recorded one:\n%s\n%s", i, live, all[i].Payload)
			}
		}
		if got := mustSince(t, b, ch, pubs[1].Pos); !slices.Equal(got, numbered("n", 3, 5)) {
			t.Fatalf("Since(n2) = %v, want n3..n5", got)
		}
		if got := mustSince(t, b, ch, pubs[4].Pos); len(got) != 0 {
			t.Fatalf("Since(last) = %v, want nothing", got)
		}
		// A position between two notices (as cursors may hold) reads from the next.
		between := bus.Position{Epoch: start.Epoch, ID: pubs[2].Pos.ID.Prev()}
		if got := mustSince(t, b, ch, between); !slices.Equal(got, numbered("n", 3, 5)) {
			t.Fatalf("Since(just before n3) = %v", got)
		}
		expectExpired(t, b, ch, bus.Position{Epoch: "another", ID: pubs[1].Pos.ID}, "another epoch")
		expectExpired(t, b, ch, bus.Position{ID: pubs[1].Pos.ID}, "no epoch")
	})
}

// The bus splices the position into the payload the same way live and
// from history, whatever shape the payload has.
func TestHistorySplicesLikeThePublish(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		in := newInbox()
		b := instanceWith(t, d, in, withHistory(100, time.Hour))
		ch, _ := wire.PersonChannel("acme", "shapes")
		if err := b.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		payloads := []string{`{"v":1}`, `{}`, `{ }`, "{\n\"v\":1}", `not json`, `{`, `[1]`}
		start := head(t, b, ch)
		for _, p := range payloads {
			if _, err := b.Publish(context.Background(), ch, []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		entries, err := since(t, b, ch, start)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "live copies", func() bool { return in.count(ch) == len(payloads) })
		for i, live := range in.got(ch) {
			if live != string(entries[i].Payload) {
				t.Fatalf("payload %q: live %q, history %q", payloads[i], live, entries[i].Payload)
			}
		}
		want := fmt.Sprintf(`{"p":"%s","e":"%s"}`, entries[1].Pos.ID, start.Epoch)
		if got := string(entries[1].Payload); got != want {
			t.Fatalf("{} became %s, want %s", got, want)
		}
		if got := string(entries[4].Payload); got != "not json" {
			t.Fatalf("a payload that is not an object changed: %q", got)
		}
	})
}

// HISTORY_SIZE: the oldest notices go first; a position before what is
// kept is expired, one at the edge of it still reads everything after.
func TestHistoryTrimmedBySize(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instanceWith(t, d, nil, withHistory(5, time.Hour))
		ch, _ := wire.PersonChannel("acme", "bob")
		start := head(t, b, ch)
		pubs := publishTexts(t, b, ch, numbered("n", 1, 8)...)
		// n1..n3 are gone; n4..n8 are kept.
		expectExpired(t, b, ch, start, "from the start")
		expectExpired(t, b, ch, pubs[1].Pos, "after n2 (n3 is gone)")
		if got := mustSince(t, b, ch, pubs[2].Pos); !slices.Equal(got, numbered("n", 4, 8)) {
			t.Fatalf("Since(n3) = %v, want n4..n8", got)
		}
		pages, err := b.Recent(context.Background(), []wire.Channel{ch}, []bus.Position{{}}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := textsOf(t, pages[0].Entries); !slices.Equal(got, []string{"n8", "n7", "n6", "n5", "n4"}) {
			t.Fatalf("Recent = %v", got)
		}
	})
}

// HISTORY_TTL: a notice older than the age is trimmed by the next publish;
// a channel silent for that long loses its history, and a reader from
// before that learns it (the meta outlives the history).
func TestHistoryTrimmedByAge(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		// Long enough that c (published ttl/2 + 200ms before d) is still
		// young at d's publish on a loaded machine: up to 800ms of delay.
		const ttl = 2 * time.Second
		b := instanceWith(t, d, nil, withHistory(100, ttl))
		ch, _ := wire.PersonChannel("acme", "bob")
		rdb := d.client()
		defer rdb.Close()
		ctx := context.Background()

		start := head(t, b, ch)
		a := publishTexts(t, b, ch, "a")[0]
		time.Sleep(ttl + 100*time.Millisecond)
		if n, _ := rdb.Exists(ctx, ch.HistoryKey()).Result(); n != 0 {
			t.Fatal("a history silent for HISTORY_TTL still exists")
		}
		expectExpired(t, b, ch, start, "history expired after a notice")
		if got := mustSince(t, b, ch, a.Pos); len(got) != 0 {
			t.Fatalf("Since(a) with the history expired = %v, want nothing (a was the last)", got)
		}

		bb := publishTexts(t, b, ch, "b")[0]
		if bb.Pos.Epoch != a.Pos.Epoch {
			t.Fatal("the epoch changed although the meta outlived the history")
		}
		expectExpired(t, b, ch, start, "a expired with its stream, b came after")
		if got := mustSince(t, b, ch, a.Pos); !slices.Equal(got, []string{"b"}) {
			t.Fatalf("Since(a) = %v, want b", got)
		}

		// Trimmed by age on the next publish while the stream lives on.
		time.Sleep(ttl / 2)
		publishTexts(t, b, ch, "c")
		time.Sleep(ttl/2 + 200*time.Millisecond)
		publishTexts(t, b, ch, "d") // b is now older than ttl, c is not
		expectExpired(t, b, ch, a.Pos, "b trimmed by age")
		if got := mustSince(t, b, ch, bb.Pos); !slices.Equal(got, []string{"c", "d"}) {
			t.Fatalf("Since(b) = %v, want c d", got)
		}
		if ttlLeft, _ := rdb.PTTL(ctx, ch.MetaKey()).Result(); ttlLeft < 7*24*time.Hour-time.Minute {
			t.Fatalf("meta lives %s, want at least a week", ttlLeft)
		}
	})
}

// After Redis restarts without persistence, every position handed out
// before is expired — never read against the new, different history.
func TestHistoryEpochChangesWhenRedisLosesItsData(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instanceWith(t, d, nil, withHistory(100, time.Hour))
		ch, _ := wire.PersonChannel("acme", "bob")
		quiet, _ := wire.PersonChannel("acme", "quiet") // never published to
		before := head(t, b, ch)
		quietBefore := head(t, b, quiet)
		pubs := publishTexts(t, b, ch, "x1", "x2")

		d.stop()
		d.start()
		waitFor(t, "redis back", func() bool { _, err := tryPublish(b, ch, "after restart"); return err == nil })
		publishTexts(t, b, ch, "y1", "y2")

		for _, pos := range []bus.Position{before, pubs[0].Pos, pubs[1].Pos} {
			expectExpired(t, b, ch, pos, "position from before the restart")
		}
		expectExpired(t, b, quiet, quietBefore, "a channel never published to")
		now := head(t, b, ch)
		if now.Epoch == before.Epoch || now.Epoch == "" {
			t.Fatalf("epoch after the restart %q, before %q", now.Epoch, before.Epoch)
		}
		pages, err := b.Recent(context.Background(), []wire.Channel{ch}, []bus.Position{pubs[0].Pos}, 10)
		if !errors.Is(err, bus.ErrCursorExpired) {
			t.Fatalf("Recent before a position of the old epoch: %v, %v; want ErrCursorExpired", pages, err)
		}
	})
}

// Recent pages backwards through several channels at once, exclusive of
// the bound, and names each history's epoch.
func TestHistoryRecentPages(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instanceWith(t, d, nil, withHistory(100, time.Hour))
		person, _ := wire.PersonChannel("acme", "bob")
		company, _ := wire.NewChannel("acme", wire.ScopeCompany, "")
		empty, _ := wire.NewChannel("acme", wire.ScopeStore, "nothing-here")
		pubs := publishTexts(t, b, person, numbered("p", 1, 7)...)
		publishTexts(t, b, company, "c1")
		chs := []wire.Channel{person, company, empty}
		ctx := context.Background()

		pages, err := b.Recent(ctx, chs, make([]bus.Position, 3), 3)
		if err != nil {
			t.Fatal(err)
		}
		if got := textsOf(t, pages[0].Entries); !slices.Equal(got, []string{"p7", "p6", "p5"}) {
			t.Fatalf("first page = %v", got)
		}
		if got := textsOf(t, pages[1].Entries); !slices.Equal(got, []string{"c1"}) {
			t.Fatalf("company = %v", got)
		}
		if len(pages[2].Entries) != 0 || pages[2].Epoch == "" {
			t.Fatalf("an empty channel's page = %+v, want no entries and an epoch", pages[2])
		}
		if pages[0].Epoch != pubs[0].Pos.Epoch {
			t.Fatalf("page epoch %q, publish epoch %q", pages[0].Epoch, pubs[0].Pos.Epoch)
		}
		pages, err = b.Recent(ctx, chs[:1], []bus.Position{pages[0].Entries[2].Pos}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := textsOf(t, pages[0].Entries); !slices.Equal(got, []string{"p4", "p3", "p2", "p1"}) {
			t.Fatalf("page before p5 = %v, want p4..p1", got)
		}
		if e1, e2 := head(t, b, empty).Epoch, head(t, b, empty).Epoch; e1 != e2 {
			t.Fatalf("reading an empty channel twice gave two epochs %q %q", e1, e2)
		}
	})
}

// With history off the bus records nothing and publishes the payload as
// given; reads find nothing and positions cannot be resumed.
func TestHistoryOff(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		in := newInbox()
		b := instanceWith(t, d, in, withHistory(0, time.Hour))
		ch, _ := wire.PersonChannel("acme", "bob")
		if err := b.Subscribe(context.Background(), []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		m, _ := wire.NewMessage("x", wire.ScopePerson, time.Now())
		payload, _ := m.Encode()
		res, err := b.Publish(context.Background(), ch, payload)
		if err != nil || res.Receivers != 1 || res.Pos != (bus.Position{}) {
			t.Fatalf("Publish = %+v, %v", res, err)
		}
		waitFor(t, "live copy", func() bool { return in.count(ch) == 1 })
		if got := in.got(ch)[0]; got != string(payload) {
			t.Fatalf("published %s, want the payload unchanged", got)
		}
		rdb := d.client()
		defer rdb.Close()
		if n, _ := rdb.Exists(context.Background(), ch.HistoryKey(), ch.MetaKey()).Result(); n != 0 {
			t.Fatal("history off wrote history keys")
		}
		pages, err := b.Recent(context.Background(), []wire.Channel{ch}, []bus.Position{{}}, 10)
		if err != nil || len(pages[0].Entries) != 0 {
			t.Fatalf("Recent = %+v, %v", pages, err)
		}
		if got := head(t, b, ch); got != (bus.Position{}) {
			t.Fatalf("Head = %+v", got)
		}
		expectExpired(t, b, ch, bus.Position{Epoch: "e"}, "history off")
	})
}

// Reads running while notices are published see, every time, a gapless
// run of what was published, in order: each Since answer is exactly the
// notices after its position at that moment.
func TestHistoryReadsDuringPublishes(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		const writers, each = 4, 150
		b := instanceWith(t, d, nil, withHistory(writers*each, time.Hour))
		ch, _ := wire.PersonChannel("acme", "busy")
		start := head(t, b, ch)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if _, err := tryPublish(b, ch, fmt.Sprintf("w%d-%d", w, i)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		type read struct {
			from    bus.Position
			entries []bus.Entry
		}
		reads := make(chan read, 10000)
		stop := make(chan struct{})
		var readers sync.WaitGroup
		for range 3 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				from := start
				for {
					select {
					case <-stop:
						return
					default:
					}
					got, err := since(t, b, ch, from)
					if err != nil {
						t.Error(err)
						return
					}
					reads <- read{from, got}
					if len(got) > 0 {
						// Resume from the middle of what was read, as a client would.
						from = got[len(got)/2].Pos
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		close(reads)

		final := mustSince(t, b, ch, start)
		if len(final) != writers*each {
			t.Fatalf("%d notices recorded, want %d", len(final), writers*each)
		}
		all, _ := since(t, b, ch, start)
		index := map[bus.StreamID]int{start.ID: -1}
		for i, e := range all {
			index[e.Pos.ID] = i
		}
		n := 0
		for r := range reads {
			at, ok := index[r.from.ID]
			if !ok {
				t.Fatalf("read from an unknown position %v", r.from.ID)
			}
			for j, e := range r.entries {
				if want := all[at+1+j].Pos.ID; e.Pos.ID != want {
					t.Fatalf("a read from %v: entry %d is %v, want %v (gap or disorder)", r.from.ID, j, e.Pos.ID, want)
				}
			}
			n++
		}
		if n < 3 {
			t.Fatalf("only %d reads ran", n)
		}
		// Every writer's notices are in its own publish order.
		last := map[string]int{}
		for _, text := range final {
			var w, i int
			fmt.Sscanf(text, "w%d-%d", &w, &i)
			key := fmt.Sprint(w)
			if prev, ok := last[key]; ok && i != prev+1 {
				t.Fatalf("writer %d: %d after %d", w, i, prev)
			}
			last[key] = i
		}
	})
}

// A page of nothing asks nothing of Redis: no epoch is made up for a
// channel that has none.
func TestHistoryRecentZeroLimit(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instanceWith(t, d, nil, withHistory(100, time.Hour))
		ch, _ := wire.PersonChannel("acme", "nobody-yet")
		for _, limit := range []int{0, -1} {
			pages, err := b.Recent(context.Background(), []wire.Channel{ch}, []bus.Position{{}}, limit)
			if err != nil || len(pages) != 1 || pages[0].Epoch != "" || len(pages[0].Entries) != 0 {
				t.Fatalf("Recent(limit %d) = %+v, %v; want one empty page", limit, pages, err)
			}
		}
		rdb := d.client()
		defer rdb.Close()
		if n, _ := rdb.Exists(context.Background(), ch.HistoryKey(), ch.MetaKey()).Result(); n != 0 {
			t.Fatal("Recent with limit 0 wrote history keys")
		}
	})
}

// History needs both a size and an age: either left zero turns it off.
func TestHistoryOffWhenSizeOrAgeIsZero(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		rdb := d.client()
		defer rdb.Close()
		for i, cfg := range [][2]int{{100, 0}, {0, 3600}} {
			b := instanceWith(t, d, nil, withHistory(cfg[0], time.Duration(cfg[1])*time.Second))
			ch, _ := wire.PersonChannel("acme", fmt.Sprint("off-", i))
			res := publishTexts(t, b, ch, "x")[0]
			if res.Pos != (bus.Position{}) {
				t.Fatalf("size %d, age %ds: publish recorded at %+v", cfg[0], cfg[1], res.Pos)
			}
			if n, _ := rdb.Exists(context.Background(), ch.HistoryKey(), ch.MetaKey()).Result(); n != 0 {
				t.Fatalf("size %d, age %ds: history keys written", cfg[0], cfg[1])
			}
		}
	})
}

// pipelineCounter counts the pipelines of history scripts a client sends.
type pipelineCounter struct{ n atomic.Int64 }

func (*pipelineCounter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c *pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "evalsha" {
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// A burst of readers (a reconnect storm: every subscription replays after
// its cursor at once) shares round trips: the reads queued while one is on
// the wire go out together in one pipeline. Each reader still gets exactly
// its own answer, and a read refused (another epoch) fails alone.
func TestHistoryReadsInABurstShareRoundTrips(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		counter := &pipelineCounter{}
		b := instanceWith(t, d, nil, func(c *bus.Config) {
			withHistory(100, time.Hour)(c)
			c.Client.AddHook(counter)
		})
		const readers = 200
		chs := make([]wire.Channel, readers)
		from := make([]bus.Position, readers)
		for i := range readers {
			chs[i], _ = wire.PersonChannel("acme", fmt.Sprint("storm-", i))
			from[i] = publishTexts(t, b, chs[i], fmt.Sprint("seen-", i), fmt.Sprint("a-", i), fmt.Sprint("b-", i))[0].Pos
			if i%10 == 0 {
				from[i].Epoch = "another-epoch"
			}
		}
		public := wire.PublicChannel()
		pub := head(t, b, public)
		before := counter.n.Load()
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				got, err := b.Since(ctx, []wire.Channel{chs[i], public}, []bus.Position{from[i], pub})
				if i%10 == 0 {
					if !errors.Is(err, bus.ErrCursorExpired) {
						t.Errorf("reader %d (another epoch): %d channels, %v; want ErrCursorExpired", i, len(got), err)
					}
					return
				}
				if err != nil {
					t.Errorf("reader %d: %v", i, err)
					return
				}
				if texts := textsOf(t, got[0]); !slices.Equal(texts, []string{fmt.Sprint("a-", i), fmt.Sprint("b-", i)}) || len(got[1]) != 0 {
					t.Errorf("reader %d got %q and %d public notices", i, texts, len(got[1]))
				}
			}()
		}
		close(start)
		wg.Wait()
		trips := counter.n.Load() - before
		t.Logf("%d concurrent reads in %d round trips", readers, trips)
		if trips > readers/2 {
			t.Fatalf("%d concurrent reads took %d round trips: they were not batched", readers, trips)
		}
	})
}

// A full history is trimmed in batches, not on every publish: the stream
// grows to HISTORY_SIZE and a quarter, and one publish in that many trims
// it back to HISTORY_SIZE. Readers still see exactly the newest
// HISTORY_SIZE notices.
func TestHistoryTrimmedInBatches(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		const size, slack, n = 20, 5, 200
		b := instanceWith(t, d, nil, withHistory(size, time.Hour))
		ch, _ := wire.PersonChannel("acme", "bob")
		rdb := d.client()
		defer rdb.Close()
		ctx := context.Background()
		trims, prev := 0, int64(0)
		var pubs []bus.Published
		for i := 1; i <= n; i++ {
			pubs = append(pubs, publishTexts(t, b, ch, fmt.Sprint("n", i))...)
			l, err := rdb.XLen(ctx, ch.HistoryKey()).Result()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case l > size+slack:
				t.Fatalf("after %d publishes the stream holds %d notices, more than %d", i, l, size+slack)
			case l < prev:
				trims++
				if l != size {
					t.Fatalf("publish %d trimmed the stream to %d notices, want %d", i, l, size)
				}
			case l != prev+1:
				t.Fatalf("publish %d: the stream went from %d to %d notices", i, prev, l)
			}
			prev = l
		}
		if want := (n - size) / (slack + 1); trims != want {
			t.Fatalf("%d publishes trimmed the stream %d times, want %d", n, trims, want)
		}
		if got := mustSince(t, b, ch, pubs[n-size-1].Pos); !slices.Equal(got, numbered("n", n-size+1, n)) {
			t.Fatalf("Since(n%d) = %v", n-size, got)
		}
		expectExpired(t, b, ch, pubs[n-size-2].Pos, fmt.Sprintf("after n%d (n%d is past the size)", n-size-1, n-size))
		pages, err := b.Recent(ctx, []wire.Channel{ch}, []bus.Position{{}}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := textsOf(t, pages[0].Entries); len(got) != size || got[0] != fmt.Sprint("n", n) || got[size-1] != fmt.Sprint("n", n-size+1) {
			t.Fatalf("Recent = %v, want n%d down to n%d", got, n, n-size+1)
		}
	})
}
