package cursor_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/sub/internal/cursor"
	"github.com/oshirase/oshirase/wire"
)

// channels lists what a subscriber of tenant/user/store reads, in the
// order sub's audience lists them.
func channels(t testing.TB, tenant, user, store string) []wire.Channel {
	t.Helper()
	person, err := wire.PersonChannel(tenant, user)
	if err != nil {
		t.Fatal(err)
	}
	company, _ := wire.NewChannel(tenant, wire.ScopeCompany, "")
	chs := []wire.Channel{person, company, wire.PublicChannel()}
	if store != "" {
		s, _ := wire.NewChannel(tenant, wire.ScopeStore, store)
		chs = append(chs, s)
	}
	return chs
}

func sample(chs []wire.Channel, at int) cursor.Cursor {
	c := cursor.Cursor{At: at}
	for i := range chs {
		c.Pos = append(c.Pos, bus.Position{Epoch: "epoch" + string(rune('A'+i)), ID: bus.StreamID{MS: 1_800_000_000_000 + uint64(i), Seq: uint64(i * 300)}})
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	for _, chs := range [][]wire.Channel{channels(t, "acme", "bob", "s1"), channels(t, "acme", "bob", ""), channels(t, "a/c", "日本", "")} {
		for at := -1; at < len(chs); at++ { // -1: made for no notice
			c := sample(chs, at)
			s := cursor.Encode(chs, c)
			if len(s) > 200 {
				t.Errorf("cursor of %d channels is %d characters", len(chs), len(s))
			}
			got, err := cursor.Decode(s, chs)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got.At != c.At || !slices.Equal(got.Pos, c.Pos) {
				t.Fatalf("round trip: got %+v, want %+v", got, c)
			}
			// The channel order of the subscriber does not matter.
			rev := slices.Clone(chs)
			slices.Reverse(rev)
			got, err = cursor.Decode(s, rev)
			back := slices.Clone(got.Pos)
			slices.Reverse(back)
			if err != nil || !slices.Equal(back, c.Pos) || (at < 0) != (got.At < 0) || at >= 0 && rev[got.At] != chs[c.At] {
				t.Fatalf("decoded against reordered channels: %+v, %v", got, err)
			}
			if again := cursor.Encode(rev, got); again != s {
				t.Fatalf("one cursor, two texts: %s and %s", s, again)
			}
		}
	}
}

func TestDecodeRefusesAndRevealsNothing(t *testing.T) {
	bob := channels(t, "acme", "bob", "s1")
	s := cursor.Encode(bob, sample(bob, 0))
	flipped := []byte(s)
	flipped[10] ^= 1
	for _, tc := range []struct {
		name string
		in   string
		chs  []wire.Channel
		want error
		code error
	}{
		{"another user", s, channels(t, "acme", "alice", "s1"), cursor.ErrForeign, errkind.ErrForbidden},
		{"another tenant", s, channels(t, "globex", "bob", "s1"), cursor.ErrForeign, errkind.ErrForbidden},
		{"another tenant without a store", s, channels(t, "globex", "bob", ""), cursor.ErrForeign, errkind.ErrForbidden},
		{"store changed", s, channels(t, "acme", "bob", "s2"), cursor.ErrStale, errkind.ErrCursorExpired},
		{"store gone", s, channels(t, "acme", "bob", ""), cursor.ErrStale, errkind.ErrCursorExpired},
		{"empty", "", bob, cursor.ErrMalformed, errkind.ErrBadInput},
		{"garbage", "not a cursor!", bob, cursor.ErrMalformed, errkind.ErrBadInput},
		{"base64 garbage", base64.RawURLEncoding.EncodeToString([]byte("hello, cursor world")), bob, cursor.ErrMalformed, errkind.ErrBadInput},
		{"one bit changed", string(flipped), bob, cursor.ErrMalformed, errkind.ErrBadInput},
		{"cut short", s[:len(s)-3], bob, cursor.ErrMalformed, errkind.ErrBadInput},
		{"padded", s + "=", bob, cursor.ErrMalformed, errkind.ErrBadInput},
		{"huge", strings.Repeat("A", 1<<20), bob, cursor.ErrMalformed, errkind.ErrBadInput},
		{"just over the limit", strings.Repeat("A", cursor.MaxLen+1), bob, cursor.ErrMalformed, errkind.ErrBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cursor.Decode(tc.in, tc.chs)
			if !errors.Is(err, tc.want) || !errors.Is(err, tc.code) {
				t.Fatalf("Decode = %v, want %v (%v)", err, tc.want, tc.code)
			}
			if strings.Contains(err.Error(), "bob") || strings.Contains(err.Error(), "acme") || strings.Contains(err.Error(), "epoch") {
				t.Fatalf("the error tells something of the cursor: %v", err)
			}
		})
	}
}

// item is a notice in a snapshot of several channels' histories.
type item struct {
	ch int
	id bus.StreamID
}

// The positions a cursor holds split every snapshot exactly: for the
// cursor of any notice k, resuming (id > pos) reads exactly the notices
// after k in the merged order, and reading older ones (id < Older bound)
// exactly those before k, with ties of ids on different channels included.
func TestCursorPositionsSplitTheMergedOrder(t *testing.T) {
	chs := channels(t, "acme", "bob", "s1")
	epochs := []string{"e0", "e1", "e2", "e3"}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var items []item
		for i := range chs {
			ms := uint64(100)
			for range rng.IntN(6) {
				ms += uint64(rng.IntN(3)) // ties across channels are common
				items = append(items, item{i, bus.StreamID{MS: ms, Seq: uint64(rng.IntN(2))}})
				ms++
			}
		}
		slices.SortFunc(items, func(a, b item) int {
			if cursor.Before(a.id, cursor.Kind(chs[a.ch]), b.id, cursor.Kind(chs[b.ch])) {
				return -1
			}
			return 1
		})
		for k, it := range items {
			c := cursor.At(chs, epochs, it.ch, it.id)
			if d, err := cursor.Decode(cursor.Encode(chs, c), chs); err != nil || !slices.Equal(d.Pos, c.Pos) || d.At != c.At {
				t.Fatalf("round %d: cursor does not survive encoding: %v", round, err)
			}
			older := c.Older()
			for j, o := range items {
				after := o.id.Compare(c.Pos[o.ch].ID) > 0
				before := o.id.Compare(older[o.ch].ID) < 0
				if after != (j > k) || before != (j < k) {
					t.Fatalf("round %d: cursor of #%d %v on %d: #%d %v on %d counted after=%v before=%v",
						round, k, it.id, it.ch, j, o.id, o.ch, after, before)
				}
			}
			for i, p := range older {
				if p.Epoch != epochs[i] {
					t.Fatal("epochs lost")
				}
			}
		}
	}
}

// FuzzDecode feeds Decode bodies with a valid checksum, so that the fuzzer
// reaches the parser: it never panics, and a cursor it accepts has exactly
// one text form.
func FuzzDecode(f *testing.F) {
	chs := channels(f, "acme", "bob", "s1")
	for at := range chs {
		s := cursor.Encode(chs, sample(chs, at))
		raw, _ := base64.RawURLEncoding.DecodeString(s)
		f.Add(raw[:len(raw)-4])
	}
	f.Add([]byte{1, 0, 1})
	f.Fuzz(func(t *testing.T, body []byte) {
		sum := sha256.Sum256(body)
		s := base64.RawURLEncoding.EncodeToString(append(body, sum[:4]...))
		c, err := cursor.Decode(s, chs)
		if err != nil {
			if !errors.Is(err, errkind.ErrBadInput) && !errors.Is(err, errkind.ErrForbidden) && !errors.Is(err, errkind.ErrCursorExpired) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if c.At < -1 || c.At >= len(chs) || len(c.Pos) != len(chs) {
			t.Fatalf("accepted a cursor out of shape: %+v", c)
		}
		if again := cursor.Encode(chs, c); again != s {
			t.Fatalf("accepted %s, which encodes as %s", s, again)
		}
	})
}
