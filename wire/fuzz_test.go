package wire_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/oshirase/oshirase/wire"
)

// FuzzDecode: anything read from Redis decodes or is refused, never
// panics; what decodes is a valid message that survives a round trip.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"019ac4b2-0000-7000-8000-000000000000","text":"hi","ts":1800000000000,"scope":"PERSON"}`))
	f.Add([]byte(`{"v":2,"id":"x","text":"","ts":1,"future":[1,2,3]}`))
	f.Add([]byte(`{"v":1,"id":"x","ts":1,"scope":"NOPE"}`))
	f.Add([]byte(`{"v":0}`))
	f.Add([]byte(`[]`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wire.Decode(b)
		if err != nil {
			if m != nil {
				t.Fatal("Decode returned a message with an error")
			}
			return
		}
		if m.V < 1 || m.ID == "" || m.TS <= 0 || !m.Scope.Valid() {
			t.Fatalf("Decode accepted an invalid message: %+v", m)
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := wire.Decode(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		enc2, _ := again.Encode()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the message: %s then %s", enc, enc2)
		}
	})
}

// FuzzParseChannel: any string is a canonical channel name or refused; a
// name that parses is exactly the one NewChannel builds from its parts.
func FuzzParseChannel(f *testing.F) {
	for _, s := range []string{
		"oshirase:v1:{acme/p/bob}", "oshirase:v1:{acme/c}", "oshirase:v1:{a}", "oshirase:v1:{ac%2Fme/s/s%201}",
		"oshirase:v1:{acme/p/b ob}", "oshirase:v1:{acme/p/b%2fob}", "oshirase:v1:{acme/x/bob}", "oshirase:v1:{/p/}",
		"oshirase:v1:{acme/p/bob/extra}", "oshirase:v1:{%", "oshirase:v1:count:{acme/p/bob}", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tenant, scope, id, err := wire.ParseChannel(s)
		if err != nil {
			return
		}
		c, err := wire.NewChannel(tenant, scope, id)
		if err != nil {
			t.Fatalf("ParseChannel(%q) = (%q, %q, %q), which NewChannel refuses: %v", s, tenant, scope, id, err)
		}
		if string(c) != s {
			t.Fatalf("ParseChannel(%q) = (%q, %q, %q), which NewChannel names %q", s, tenant, scope, id, c)
		}
	})
}

// Round trip from the other side: every channel NewChannel builds parses
// back to its parts.
func FuzzChannelRoundTrip(f *testing.F) {
	f.Add("acme", "bob", uint8(0))
	f.Add("a/p", "b%20c", uint8(1))
	f.Add("テナント", "ユーザー", uint8(2))
	f.Fuzz(func(t *testing.T, tenant, id string, k uint8) {
		scope := []wire.Scope{wire.ScopePerson, wire.ScopeStore, wire.ScopeCompany, wire.ScopePublic}[int(k)%4]
		c, err := wire.NewChannel(tenant, scope, id)
		if err != nil {
			return
		}
		gt, gs, gid, err := wire.ParseChannel(string(c))
		if err != nil {
			t.Fatalf("ParseChannel(%q): %v", c, err)
		}
		wantT, wantID := tenant, id
		switch scope {
		case wire.ScopePublic:
			wantT, wantID = "", ""
		case wire.ScopeCompany:
			wantID = ""
		}
		if gt != wantT || gs != scope || gid != wantID {
			t.Fatalf("%q parsed to (%q, %q, %q), want (%q, %q, %q)", c, gt, gs, gid, wantT, scope, wantID)
		}
	})
}

// FuzzEncode: Encode writes every message byte for byte as json.Marshal
// does (the hand-written encoder replaced it on the publish path), escapes,
// invalid UTF-8 and empty optional fields included.
func FuzzEncode(f *testing.F) {
	f.Add(1, "019ac4b2-0000-7000-8000-000000000000", "hi", int64(1800000000000), "PERSON", "", "")
	f.Fuzz(func(t *testing.T, v int, id, text string, ts int64, scope, pos, epoch string) {
		m := &wire.Message{V: v, ID: id, Text: text, TS: ts, Scope: wire.Scope(scope), Pos: pos, Epoch: epoch}
		got, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Encode:       %s\njson.Marshal: %s", got, want)
		}
	})
}
