package cursor_test

// Tests aimed at mutants that survived `make mutation` (docs/mutation.md):
// the edges of what Decode accepts, and the order Before defines.

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/sub/internal/cursor"
	"github.com/oshirase/oshirase/wire"
)

// resum re-encodes a cursor's body with a valid checksum, after edit has
// changed it: what Decode must refuse on content, not on the checksum.
func resum(t *testing.T, s string, edit func(body []byte) []byte) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	body := edit(slices.Clone(raw[:len(raw)-4]))
	sum := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(append(body, sum[:4]...))
}

// Before is a strict order: no notice comes before itself, and ties of
// ids are broken by kind alone.
func TestBeforeIsStrict(t *testing.T) {
	id := bus.StreamID{MS: 1_800_000_000_000, Seq: 3}
	for k := range 4 {
		if cursor.Before(id, k, id, k) {
			t.Errorf("Before(x, %d, x, %d): a notice comes before itself", k, k)
		}
		for k2 := range 4 {
			if got := cursor.Before(id, k, id, k2); got != (k < k2) {
				t.Errorf("Before(x, %d, x, %d) = %v", k, k2, got)
			}
		}
		if !cursor.Before(id, 3, id.Next(), 0) || cursor.Before(id.Next(), 0, id, 3) {
			t.Errorf("ids do not come before kinds (kind %d)", k)
		}
	}
}

// The cursor of a notice holds that notice's own id on its own channel,
// whatever its kind; channels of a later kind hold the id before it.
func TestAtHoldsTheNoticeOnItsChannel(t *testing.T) {
	chs := channels(t, "acme", "bob", "s1")
	epochs := []string{"e0", "e1", "e2", "e3"}
	id := bus.StreamID{MS: 500, Seq: 2}
	for at := range chs {
		c := cursor.At(chs, epochs, at, id)
		if c.At != at || c.Pos[at].ID != id {
			t.Fatalf("cursor of a notice on channel %d holds %v there, want %v", at, c.Pos[at].ID, id)
		}
		for i, ch := range chs {
			want := id
			if cursor.Kind(ch) > cursor.Kind(chs[at]) {
				want = id.Prev()
			}
			if c.Pos[i].ID != want || c.Pos[i].Epoch != epochs[i] {
				t.Fatalf("cursor of a notice on channel %d: channel %d holds %+v, want %v", at, i, c.Pos[i], want)
			}
		}
	}
}

// Bodies too short to hold a cursor are malformed (and do not panic).
func TestDecodeShortBodies(t *testing.T) {
	chs := channels(t, "acme", "bob", "")
	for n := range 12 {
		for _, b := range []byte{0, 1, 0xff} {
			raw := slices.Repeat([]byte{b}, n)
			if _, err := cursor.Decode(base64.RawURLEncoding.EncodeToString(raw), chs); !errors.Is(err, cursor.ErrMalformed) {
				t.Fatalf("%d bytes of %#x: err = %v, want ErrMalformed", n, b, err)
			}
		}
	}
}

// Every field of a well-checksummed body is checked: where the cursor's
// own notice is, how many channels, their kinds, their epochs.
func TestDecodeRefusesBadFieldsWithAValidChecksum(t *testing.T) {
	chs := channels(t, "acme", "bob", "s1")
	s := cursor.Encode(chs, sample(chs, 0))
	if _, err := cursor.Decode(resum(t, s, func(b []byte) []byte { return b }), chs); err != nil {
		t.Fatalf("re-summed cursor: %v", err)
	}
	for name, edit := range map[string]func([]byte) []byte{
		"at past the last channel": func(b []byte) []byte { b[1] = b[2] + 1; return b },
		"at far out":               func(b []byte) []byte { b[1] = 200; return b },
		"no channels":              func(b []byte) []byte { return b[:3] },
		"version 2":                func(b []byte) []byte { b[0] = 2; return b },
		"trailing byte":            func(b []byte) []byte { return append(b, 0) },
		"kind 4":                   func(b []byte) []byte { b[3] = 4; return b },
	} {
		if _, err := cursor.Decode(resum(t, s, edit), chs); !errors.Is(err, cursor.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// Two entries of one kind are malformed: a subscription reads one channel
// of each kind, and the entries name kinds in order, each once.
func TestDecodeRefusesRepeatedKinds(t *testing.T) {
	person := channels(t, "acme", "bob", "")[0]
	company, _ := wire.NewChannel("acme", wire.ScopeCompany, "")
	twice := []wire.Channel{person, person}
	s := cursor.Encode(twice, sample(twice, 0))
	for _, chs := range [][]wire.Channel{{person, company}, {company, person}, twice} {
		if c, err := cursor.Decode(s, chs); !errors.Is(err, cursor.ErrMalformed) {
			t.Fatalf("a cursor naming the person channel twice, read against %d channels: %+v, %v; want ErrMalformed", len(chs), c, err)
		}
	}
}

// Epochs of up to 64 bytes, and ids up to the largest, round-trip; a
// longer epoch is refused.
func TestDecodeEpochAndIDLimits(t *testing.T) {
	chs := channels(t, "acme", "bob", "s1")
	for _, tt := range []struct {
		epoch int
		ok    bool
	}{{1, true}, {64, true}, {65, false}} {
		c := sample(chs, len(chs)-1)
		for i := range c.Pos {
			c.Pos[i].Epoch = strings.Repeat(string(rune('a'+i)), tt.epoch)
			c.Pos[i].ID = bus.StreamID{MS: math.MaxUint64, Seq: math.MaxUint64 - uint64(i)}
		}
		s := cursor.Encode(chs, c)
		if len(s) > cursor.MaxLen {
			t.Fatalf("the largest cursor is %d characters, over MaxLen", len(s))
		}
		got, err := cursor.Decode(s, chs)
		if !tt.ok {
			if !errors.Is(err, cursor.ErrMalformed) {
				t.Fatalf("epoch of %d bytes: err = %v, want ErrMalformed", tt.epoch, err)
			}
			continue
		}
		if err != nil || got.At != c.At || !slices.Equal(got.Pos, c.Pos) {
			t.Fatalf("epoch of %d bytes: %+v, %v; want %+v", tt.epoch, got, err, c)
		}
	}
}
