package wire

import (
	"encoding/json"
	"testing"
	"time"
)

// The messages the services write take the fast path: pub's encoding, the
// bus's spliced position, and what the load tool and other writers of
// plain JSON produce with spaces.
func TestDecodeFastTakesWhatTheServicesWrite(t *testing.T) {
	m, err := NewMessage("こんにちは, \"world\" <b>&</b>", ScopeCompany, time.UnixMilli(1_800_000_000_123))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := NewMessage("hi", ScopePerson, time.UnixMilli(1_800_000_000_123))
	enc, _ := plain.Encode()
	for _, in := range []string{
		string(enc),
		`{"p":"1800000000123-7","e":"Ab_c-9","v":1,"id":"019ac4b2-0000-7000-8000-000000000000","text":"ユーザー","ts":1800000000123,"scope":"store"}`,
		" {\n\t\"v\" : 1 , \"id\":\"x\",\"text\":\"\",\"ts\":5,\"scope\":\"public\"}\r\n",
		`{}`,
		`{"v":-0,"ts":-17}`,
	} {
		if _, ok := decodeFast([]byte(in)); !ok {
			t.Errorf("decodeFast refused %s", in)
		}
	}
	// Escapes (Encode writes \" and \u003c for this text) take the slow
	// way, and come out the same.
	enc, _ = m.Encode()
	if _, ok := decodeFast(enc); ok {
		t.Errorf("decodeFast took a message with escapes: %s", enc)
	}
	got, err := Decode(enc)
	if err != nil || *got != *m {
		t.Fatalf("Decode(%s) = %+v, %v; want %+v", enc, got, err, m)
	}
}

// What the fast path leaves to encoding/json, which then decides (and
// these it refuses or reads differently: a case-folded key, null, a
// fraction).
func TestDecodeFastLeavesTheRest(t *testing.T) {
	for _, in := range []string{
		`{"ID":"x"}`, `{"v":null}`, `{"v":1.0}`, `{"v":1e0}`, `{"v":01}`, `{"v":"1"}`,
		`{"text":"a\nb"}`, `{"text":"a` + "\n" + `b"}`, "{\"text\":\"\xff\"}", `{"other":1}`,
		`{"v":1}x`, `{"v":1,}`, `{"v":1`, `{"v" 1}`, `[]`, ``, `{"v":99999999999999999999}`,
		`{"v":-}`, `{"v":1 2}`,
	} {
		if m, ok := decodeFast([]byte(in)); ok {
			t.Errorf("decodeFast took %q as %+v", in, m)
		}
	}
}

// FuzzDecodeFast: whatever the fast path takes, encoding/json takes too,
// and reads as the same message.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"id":"019ac4b2-0000-7000-8000-000000000000","text":"hi","ts":1800000000000,"scope":"person"}`,
		`{"p":"1-0","e":"e","v":1,"id":"x","text":"é","ts":1,"scope":"company"}`,
		` { "v" : -0 , "ts" : 9223372036854775807 } `, `{"v":1,"v":2}`, `{}`, `{"text":"\u00e9"}`,
		`{"v":9223372036854775808}`, `{"id":"a","Id":"b"}`, "{\"text\":\"\xed\xa0\x80\"}", `{"v":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeFast(b)
		if !ok {
			return
		}
		var want Message
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("decodeFast took %q as %+v; encoding/json refuses it: %v", b, fast, err)
		}
		if fast != want {
			t.Fatalf("decodeFast read %q as %+v; encoding/json as %+v", b, fast, want)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	payload := []byte(`{"p":"1800000000123-0","e":"Ab_c-9xyzAb1","v":1,"id":"019ac4b2-0000-7000-8000-000000000000","text":"Your order #1234 has shipped","ts":1800000000123,"scope":"person"}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m Message
			if err := json.Unmarshal(payload, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
