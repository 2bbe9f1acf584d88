package wire_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/wire"
)

func TestMessageRoundTrip(t *testing.T) {
	now := time.Unix(1_700_000_000, 123_000_000)
	m, err := wire.NewMessage("hello", wire.ScopeStore, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *m || got.Timestamp() != 1_700_000_000 || !got.PublishedAt().Equal(now.Truncate(time.Millisecond)) {
		t.Fatalf("round trip: got %+v, want %+v", got, m)
	}
}

func TestDecodeToleratesUnknownFieldsAndNewerVersions(t *testing.T) {
	got, err := wire.Decode([]byte(`{"v":7,"id":"x","text":"t","ts":5,"future":{"a":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Scope != wire.ScopePerson || got.Text != "t" {
		t.Fatalf("got %+v", got)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for _, in := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"v":0,"id":"x","ts":1}`, `{"v":1,"ts":1}`,
		`{"v":1,"id":"x"}`, `{"v":1,"id":"x","ts":1,"scope":"galaxy"}`, `{"v":"1","id":"x","ts":1}`,
	} {
		if _, err := wire.Decode([]byte(in)); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("Decode(%q) = %v, want ErrMalformed", in, err)
		}
	}
}

// The bus splices the history position into the encoded message right
// after its opening brace; Decode reads it back.
func TestDecodeReadsSplicedPosition(t *testing.T) {
	m, _ := wire.NewMessage("hello", wire.ScopeCompany, time.Unix(1_700_000_000, 0))
	b, _ := m.Encode()
	spliced := append([]byte(`{"p":"1700000000000-3","e":"ep0ch",`), b[1:]...)
	got, err := wire.Decode(spliced)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pos != "1700000000000-3" || got.Epoch != "ep0ch" || got.Text != "hello" || got.ID != m.ID {
		t.Fatalf("got %+v", got)
	}
	if strings.Contains(string(b), `"p"`) || strings.Contains(string(b), `"e"`) {
		t.Fatalf("a message without a position encodes one: %s", b)
	}
}

// The lowest accepted version and timestamp are 1: the checks are "< 1" and
// "<= 0", not one off.
func TestDecodeBoundaries(t *testing.T) {
	got, err := wire.Decode([]byte(`{"v":1,"id":"x","ts":1,"scope":"store"}`))
	if err != nil {
		t.Fatalf("v 1, ts 1: %v", err)
	}
	if got.V != 1 || got.TS != 1 || got.Scope != wire.ScopeStore {
		t.Fatalf("got %+v", got)
	}
	for _, in := range []string{`{"v":1,"id":"x","ts":0}`, `{"v":1,"id":"x","ts":-5}`, `{"v":-1,"id":"x","ts":1}`, `{"v":1,"id":"","ts":1}`} {
		if _, err := wire.Decode([]byte(in)); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("Decode(%q) = %v, want ErrMalformed", in, err)
		}
	}
}
