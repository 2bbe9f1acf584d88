package bus_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/wire"
)

// FuzzParseStreamID: any string is a stream id or refused; an id that
// parses prints in the form Redis writes, which parses back to it (the
// input itself, unless it padded a number with zeros), and its neighbours
// order around it.
func FuzzParseStreamID(f *testing.F) {
	for _, s := range []string{"0-0", "1700000000000-3", "18446744073709551615-18446744073709551615",
		"007-01", "18446744073709551616-0", "+1-0", "1-", "-1", "1-1-1", "", "1_0-0", " 1-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := bus.ParseStreamID(s)
		if err != nil {
			if !id.IsZero() {
				t.Fatalf("ParseStreamID(%q) refused with %v", s, id)
			}
			return
		}
		text := id.String()
		again, err := bus.ParseStreamID(text)
		if err != nil || again != id {
			t.Fatalf("ParseStreamID(%q) = %v, which prints as %q and parses to %v, %v", s, id, text, again, err)
		}
		ms, seq, _ := strings.Cut(s, "-")
		padded := (len(ms) > 1 && ms[0] == '0') || (len(seq) > 1 && seq[0] == '0')
		if (text == s) == padded {
			t.Fatalf("ParseStreamID(%q) prints as %q", s, text)
		}
		if id.Compare(id) != 0 {
			t.Fatalf("%v differs from itself", id)
		}
		if next := id.Next(); next != id && (id.Compare(next) != -1 || next.Compare(id) != 1 || next.Prev() != id) {
			t.Fatalf("%v: Next %v", id, next)
		} else if next == id && (id.MS != math.MaxUint64 || id.Seq != math.MaxUint64) {
			t.Fatalf("%v has no successor", id)
		}
		if prev := id.Prev(); prev != id && (prev.Compare(id) != -1 || prev.Next() != id) {
			t.Fatalf("%v: Prev %v", id, prev)
		} else if prev == id && !id.IsZero() {
			t.Fatalf("%v has no predecessor", id)
		}
	})
}

// FuzzSplice: a history entry's position spliced into the encoded message
// reads back, through wire.Decode, as the message with that position and
// epoch — the same bytes a live delivery carries; a JSON object of any
// other shape stays valid JSON with its own entries, and what is not an
// object passes unchanged.
func FuzzSplice(f *testing.F) {
	f.Add("hello", uint8(0), int64(1700000000000), uint64(1700000000000), uint64(3), []byte(`{"a":1}`))
	f.Add("", uint8(3), int64(1), uint64(0), uint64(0), []byte(`{}`))
	f.Add("ü\"\\\n<>", uint8(1), int64(math.MaxInt64/1000000), uint64(math.MaxUint64), uint64(math.MaxUint64), []byte(`{ }`))
	f.Add("x", uint8(2), int64(5), uint64(1), uint64(2), []byte(`[1]`))
	f.Add("x", uint8(2), int64(5), uint64(1), uint64(2), []byte(`{"p":"9-9","a":[{}]}`))
	f.Add("x", uint8(2), int64(5), uint64(1), uint64(2), []byte(`{`))
	epoch := bus.NewEpoch()
	f.Fuzz(func(t *testing.T, text string, scope uint8, ms int64, sms, sseq uint64, raw []byte) {
		id := bus.StreamID{MS: sms, Seq: sseq}
		sc := []wire.Scope{wire.ScopePerson, wire.ScopeStore, wire.ScopeCompany, wire.ScopePublic}[int(scope)%4]
		if m, err := wire.NewMessage(text, sc, time.UnixMilli(ms)); err == nil {
			enc, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			// The live copy as sub reads it (text not UTF-8 encodes with
			// U+FFFD; a time before 1970, which pub never stamps, does not
			// decode at all).
			if live, err := wire.Decode(enc); err == nil {
				got, err := wire.Decode(bus.Splice(enc, id.String(), epoch))
				if err != nil {
					t.Fatalf("%s spliced with %v: %v", enc, id, err)
				}
				want := *live
				want.Pos, want.Epoch = id.String(), epoch
				if *got != want {
					t.Fatalf("%s spliced with %v decodes to %+v, want %+v", enc, id, *got, want)
				}
			} else if ms > 0 {
				t.Fatalf("%s: %v", enc, err)
			}
		}
		out := bus.Splice(raw, id.String(), epoch)
		var obj map[string]json.RawMessage
		if len(raw) < 2 || raw[0] != '{' {
			if !bytes.Equal(out, raw) {
				t.Fatalf("%q, not an object, spliced into %q", raw, out)
			}
			return
		}
		if !json.Valid(raw) || json.Unmarshal(raw, &obj) != nil {
			return
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s spliced into %q: %v", raw, out, err)
		}
		var p, e string
		if _, ok := obj["p"]; !ok && (json.Unmarshal(got["p"], &p) != nil || p != id.String()) {
			t.Fatalf("%s spliced into %s: p %s", raw, out, got["p"])
		}
		if _, ok := obj["e"]; !ok && (json.Unmarshal(got["e"], &e) != nil || e != epoch) {
			t.Fatalf("%s spliced into %s: e %s", raw, out, got["e"])
		}
		for k, v := range obj {
			if !bytes.Equal(got[k], v) {
				t.Fatalf("%s spliced into %s: %q is %s", raw, out, k, got[k])
			}
		}
	})
}
