package bus_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/wire"
)

// publish.lua keeps the stream's length and oldest id in the meta so that
// most publishes do not ask the stream; these tests check that the trim
// mark readers rely on stays exact whatever happens to the stream between
// publishes.

// Random publishes, with HISTORY_SIZE changing between them, notices past
// the age, the stream lost on its own (expired or evicted) and publishes
// by the earlier script (a rolling deploy): after every publish the trim
// mark is the newest id ever removed, last is the newest id, the meta's
// own figures match the stream whenever they claim to, and Since answers
// exactly what a reader is owed from every position.
func TestHistoryTrimMarkStaysExact(t *testing.T) {
	// Scripts of earlier releases: v1 kept no length in the meta, v2
	// trimmed on every publish.
	var oldScripts []*redis.Script
	for _, name := range []string{"testdata/publish_v1.lua", "testdata/publish_v2.lua"} {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		oldScripts = append(oldScripts, redis.NewScript(string(src)))
	}
	forEachTopology(t, func(t *testing.T, d deployment) {
		seed := uint64(time.Now().UnixNano())
		if s, err := strconv.ParseUint(os.Getenv("TRIM_SEED"), 10, 64); err == nil {
			seed = s // TRIM_SEED=<the seed a failure logged> replays it
		}
		t.Logf("seed %d (TRIM_SEED replays it)", seed)
		rnd := rand.New(rand.NewPCG(seed, 1))
		rdb := d.client()
		defer rdb.Close()
		ctx := context.Background()
		ch, _ := wire.PersonChannel("acme", "model")
		const shortTTL = time.Second
		sizes := []int{1, 2, 3, 5}
		buses := map[int]*bus.Redis{}
		for _, size := range sizes {
			buses[size] = instanceWith(t, d, nil, withHistory(size, time.Hour))
		}
		short := instanceWith(t, d, nil, withHistory(3, shortTTL))

		var published []bus.StreamID // every id ever appended, in order
		size, ttl, agedSteps := 3, time.Hour, 0
		for step := range 150 {
			op := rnd.IntN(12)
			switch {
			case op == 0: // the stream lost on its own
				if err := rdb.Del(ctx, ch.HistoryKey()).Err(); err != nil {
					t.Fatal(err)
				}
				// A stream made again within the millisecond of its last
				// notice can hand out that notice's id again (both
				// scripts; see the notes): not what this test is about.
				time.Sleep(2 * time.Millisecond)
				continue
			case op == 1: // HISTORY_SIZE changes (a redeploy)
				size = sizes[rnd.IntN(len(sizes))]
				continue
			case op == 2 && agedSteps < 3: // everything kept grows past a short age
				agedSteps++
				time.Sleep(shortTTL + 100*time.Millisecond)
				size, ttl = 3, shortTTL
			}
			m, _ := wire.NewMessage(fmt.Sprint("s", step), wire.ScopePerson, time.Now())
			payload, _ := m.Encode()
			var id bus.StreamID
			if op == 3 && ttl == time.Hour { // a pub of the earlier release
				args := []any{size, ttl.Milliseconds(), bus.MetaTTL(ttl).Milliseconds(), string(ch), payload, bus.NewEpoch(), "", 0, "", 0}
				if step%2 == 1 { // v2 takes the epoch first, then the notices
					args = []any{size, ttl.Milliseconds(), bus.MetaTTL(ttl).Milliseconds(), bus.NewEpoch(), string(ch), payload, ""}
				}
				res, err := oldScripts[step%2].Run(ctx, rdb, []string{ch.CountKey(), ch.HistoryKey(), ch.MetaKey()}, args...).Slice()
				if err != nil {
					t.Fatal(err)
				}
				one := res[0].([]any)
				if id, err = bus.ParseStreamID(one[1].(string)); err != nil {
					t.Fatal(err)
				}
			} else {
				b := buses[size]
				if ttl == shortTTL {
					b = short
				}
				p, err := b.Publish(ctx, ch, payload)
				if err != nil {
					t.Fatal(err)
				}
				id = p.Pos.ID
			}
			published = append(published, id)
			if os.Getenv("TRIM_DEBUG") != "" {
				t.Logf("step %d op %d size %d ttl %s id %s meta %v stream %v", step, op, size, ttl, id, rdb.HGetAll(ctx, ch.MetaKey()).Val(), streamIDs(t, rdb, ch))
			}
			if ttl == shortTTL && rdb.PTTL(ctx, ch.HistoryKey()).Val() < 0 {
				// The machine stalled past the short age: the stream expired
				// before it could be looked at; the next publish notices.
				ttl = time.Hour
				continue
			}
			checkTrimMark(t, rdb, ch, published, fmt.Sprintf("step %d (op %d, size %d, ttl %s)", step, op, size, ttl))
			checkStreamBound(t, rdb, ch, sizes, fmt.Sprintf("step %d", step))
			checkSince(t, buses[size], size, rdb, ch, published, rnd)
			ttl = time.Hour
		}
	})
}

// checkTrimMark compares the meta with the stream and with every id
// appended so far.
func checkTrimMark(t *testing.T, rdb redis.UniversalClient, ch wire.Channel, published []bus.StreamID, at string) {
	t.Helper()
	ctx := context.Background()
	kept := streamIDs(t, rdb, ch)
	meta, err := rdb.HGetAll(ctx, ch.MetaKey()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var removed *bus.StreamID
	for _, id := range published {
		if !slices.Contains(kept, id) && (removed == nil || id.Compare(*removed) > 0) {
			removed = &id
		}
	}
	switch {
	case removed == nil && meta["trim"] != "":
		t.Fatalf("%s: trim %s, but nothing was removed", at, meta["trim"])
	case removed != nil && meta["trim"] != removed.String():
		t.Fatalf("%s: trim %q, want %s (kept %v)", at, meta["trim"], removed, kept)
	}
	if last := published[len(published)-1].String(); meta["last"] != last {
		t.Fatalf("%s: last %q, want %s", at, meta["last"], last)
	}
	if meta["at"] != "" && meta["at"] == meta["last"] {
		if n, _ := strconv.Atoi(meta["n"]); n != len(kept) || len(kept) == 0 || meta["first"] != kept[0].String() {
			t.Fatalf("%s: the meta says n=%s first=%s, the stream holds %v", at, meta["n"], meta["first"], kept)
		}
	}
}

// checkStreamBound checks that the stream holds at most the largest
// history size and its slack (a quarter more, at least one).
func checkStreamBound(t *testing.T, rdb redis.UniversalClient, ch wire.Channel, sizes []int, at string) {
	t.Helper()
	most := slices.Max(sizes)
	most += max(1, most/4)
	if n := len(streamIDs(t, rdb, ch)); n > most {
		t.Fatalf("%s: the stream holds %d notices, more than %d", at, n, most)
	}
}

// checkSince reads after a few positions (the start, and ids published so
// far) with a reader whose history size is size and checks each answer:
// ErrCursorExpired exactly when a notice after the position is gone or
// older than the newest size the stream holds, else every one of those
// after it.
func checkSince(t *testing.T, h bus.History, size int, rdb redis.UniversalClient, ch wire.Channel, published []bus.StreamID, rnd *rand.Rand) {
	t.Helper()
	epoch := rdb.HGet(context.Background(), ch.MetaKey(), "e").Val()
	kept := streamIDs(t, rdb, ch)
	kept = kept[max(0, len(kept)-size):]
	froms := []bus.StreamID{{}}
	for range 3 {
		froms = append(froms, published[rnd.IntN(len(published))])
	}
	for _, from := range froms {
		lost := false
		var want []bus.StreamID
		for _, id := range published {
			if id.Compare(from) <= 0 {
				continue
			}
			if slices.Contains(kept, id) {
				want = append(want, id)
			} else {
				lost = true
			}
		}
		entries, err := since(t, h, ch, bus.Position{Epoch: epoch, ID: from})
		if lost {
			if err == nil {
				t.Fatalf("Since(%s) = %d entries; want ErrCursorExpired (kept %v)", from, len(entries), kept)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Since(%s): %v; want %v", from, err, want)
		}
		var got []bus.StreamID
		for _, e := range entries {
			got = append(got, e.Pos.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Since(%s) = %v, want %v", from, got, want)
		}
	}
}

func streamIDs(t *testing.T, rdb redis.UniversalClient, ch wire.Channel) []bus.StreamID {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), ch.HistoryKey(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]bus.StreamID, len(msgs))
	for i, m := range msgs {
		if out[i], err = bus.ParseStreamID(m.ID); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The meta's time to live is set again by a publish once an hour has
// gone since it was last set, not by every publish; it never falls below
// MetaTTL less that hour.
func TestHistoryMetaTTLSetAgainHourly(t *testing.T) {
	forEachTopology(t, func(t *testing.T, d deployment) {
		b := instanceWith(t, d, nil, withHistory(10, time.Hour))
		rdb := d.client()
		defer rdb.Close()
		ctx := context.Background()
		ch, _ := wire.PersonChannel("acme", "ttl")
		metaTTL := bus.MetaTTL(time.Hour)
		pttl := func() time.Duration { return rdb.PTTL(ctx, ch.MetaKey()).Val() }
		// age makes the meta's TTL look as if it was set ago.
		age := func(ago time.Duration) {
			exp := time.Now().Add(metaTTL - ago).UnixMilli()
			if err := rdb.HSet(ctx, ch.MetaKey(), "x", exp).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.PExpire(ctx, ch.MetaKey(), metaTTL-ago).Err(); err != nil {
				t.Fatal(err)
			}
		}

		publishTexts(t, b, ch, "a")
		if got := pttl(); got < metaTTL-time.Minute || got > metaTTL {
			t.Fatalf("a new meta lives %s, want %s", got, metaTTL)
		}
		age(59 * time.Minute)
		publishTexts(t, b, ch, "b")
		if got := pttl(); got > metaTTL-58*time.Minute || got < metaTTL-time.Hour {
			t.Fatalf("set 59 minutes ago, the meta lives %s after a publish; want it left at %s", got, metaTTL-59*time.Minute)
		}
		age(61 * time.Minute)
		publishTexts(t, b, ch, "c")
		if got := pttl(); got < metaTTL-time.Minute {
			t.Fatalf("set 61 minutes ago, the meta lives %s after a publish; want %s again", got, metaTTL)
		}
		// A meta made by a read (head.lua) has no x: the first publish sets it.
		quiet, _ := wire.PersonChannel("acme", "ttl-read-first")
		head(t, b, quiet)
		if err := rdb.PExpire(ctx, quiet.MetaKey(), time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		publishTexts(t, b, quiet, "d")
		if got := rdb.PTTL(ctx, quiet.MetaKey()).Val(); got < metaTTL-time.Minute {
			t.Fatalf("a meta without x lives %s after a publish, want %s", got, metaTTL)
		}
	})
}

// BenchmarkPublishScriptAgainstV1 compares the Redis CPU per notice of
// publish.lua with the earlier script (testdata/publish_v1.lua) on one
// redis-server, emptied before each run: batches of 100 notices a script
// call, 10 calls a pipeline (as PublishBatch sends 1,000; each script
// with its own arguments' layout), each notice to
// a channel of its own (new: every history starts), to one of 10,000
// users whose histories hold a few notices (some), or to one of 100
// users whose histories are full (full: every publish trims):
//
//	cd bus && go test -run '^$' -bench ScriptAgainstV1 -benchtime 50x -count 3 .
func BenchmarkPublishScriptAgainstV1(b *testing.B) {
	v1src, err := os.ReadFile("testdata/publish_v1.lua")
	if err != nil {
		b.Fatal(err)
	}
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	ctx := context.Background()
	scripts := map[string]*redis.Script{"v1": redis.NewScript(string(v1src)), "current": redis.NewScript(bus.PublishLua)}
	m, _ := wire.NewMessage(strings.Repeat("x", 60), wire.ScopePerson, time.Now())
	payload, _ := m.Encode()
	for _, tc := range []struct {
		name        string
		users, warm int // warm: pipelines of 1,000 sent before measuring
	}{{"new", 1 << 30, 0}, {"some", 10000, 30}, {"full", 100, 120}} {
		for _, name := range []string{"v1", "current"} {
			b.Run(tc.name+"/"+name, func(b *testing.B) {
				script := scripts[name]
				if err := rdb.FlushAll(ctx).Err(); err != nil {
					b.Fatal(err)
				}
				if err := script.Load(ctx, rdb).Err(); err != nil {
					b.Fatal(err)
				}
				seq := 0
				call := func() {
					pipe := rdb.Pipeline()
					for range 10 {
						keys := make([]string, 0, 300)
						args := []any{100, (24 * time.Hour).Milliseconds(), bus.MetaTTL(24 * time.Hour).Milliseconds()}
						if name == "current" {
							args = append(args, bus.NewEpoch())
						}
						for range 100 {
							ch, _ := wire.PersonChannel("acme", "u"+strconv.Itoa(seq%tc.users))
							seq++
							keys = append(keys, ch.CountKey(), ch.HistoryKey(), ch.MetaKey())
							if name == "current" {
								args = append(args, string(ch), payload, "")
							} else {
								args = append(args, string(ch), payload, bus.NewEpoch(), "", 0, "", 0)
							}
						}
						script.EvalSha(ctx, pipe, keys, args...)
					}
					if _, err := pipe.Exec(ctx); err != nil {
						b.Fatal(err)
					}
				}
				for range tc.warm {
					call()
				}
				cpu0 := redistest.CPUSeconds(b, rdb)
				b.ResetTimer()
				for range b.N {
					call()
				}
				b.StopTimer()
				b.ReportMetric((redistest.CPUSeconds(b, rdb)-cpu0)*1e6/float64(b.N*1000), "redis-µs/notice")
			})
		}
	}
}
