package graph_test

import (
	"math/rand/v2"
	"testing"

	"github.com/oshirase/oshirase/service/gqlserve/selectiontest"
	"github.com/oshirase/oshirase/wire"
)

// Render writes every shape of Notification's fields itself, byte for
// byte as the generated execution renders it: random selections with
// aliases, repeats, inline and named fragments, @skip and @include, root
// aliases, for messages whose text needs escaping.
func TestRenderWritesAsExecution(t *testing.T) {
	_, open := setup(t)
	rnd := rand.New(rand.NewPCG(3, 4))
	notification := &selectiontest.Object{
		Type: "Notification",
		Fields: map[string][]string{
			"id": {"", "i: ", "id: "}, "text": {"", "t: ", "body: "}, "timestamp": {"", "ts: "},
			"scope": {"", "s: "}, "cursor": {"", "c: "}, "__typename": {"", "type: "},
		},
		Fragment: "F",
	}
	texts := []string{"hi", `say "hi" \ <b>&amp;</b>`, "line\nbreak\ttab\x01\x7f", "日本語 \u2028 \u2029 😀", "\xff\xfe invalid", ""}
	scopes := []wire.Scope{wire.ScopePerson, wire.ScopeStore, wire.ScopeCompany, wire.ScopePublic}
	for i := range 300 {
		root := []string{"", "n: ", "onNotificationReceived: "}[rnd.IntN(3)]
		q := `subscription($b: Boolean!) { ` + root + `onNotificationReceived(userName: "a") { id @include(if: $b) ...F @skip(if: $b) ` + selectiontest.Random(rnd, notification) + ` } }
			fragment F on Notification { timestamp c: cursor }`
		s := open(q, map[string]any{"b": rnd.IntN(2) == 0})
		if !s.Written() {
			t.Fatalf("%s: not written", q)
		}
		m := &wire.Message{V: 1, ID: "019ac4b2-0000-7000-8000-00000000000" + string(rune('0'+i%10)), Text: texts[i%len(texts)],
			TS: 1_700_000_000_123 + int64(i)*7919, Scope: scopes[i%len(scopes)]}
		if got, want := string(s.Render(m)), string(s.Execute(m)); got != want {
			t.Fatalf("%s\nwritten:  %s\nexecuted: %s", q, got, want)
		}
		s.Release()
	}
}

// FuzzRender: for any message, a shape of every field written under
// aliases and names renders as the generated execution does.
func FuzzRender(f *testing.F) {
	f.Add("019ac4b2-0000-7000-8000-000000000000", "Your order has shipped", int64(1_700_000_000_123), "person")
	_, open := setup(f)
	shape := open(`subscription { n: onNotificationReceived(userName: "a") { __typename id t: text timestamp scope c: cursor text } }`, nil)
	f.Fuzz(func(t *testing.T, id, text string, ts int64, scope string) {
		m := &wire.Message{V: 1, ID: id, Text: text, TS: ts, Scope: wire.Scope(scope)}
		if got, want := string(shape.Render(m)), string(shape.Execute(m)); got != want {
			t.Fatalf("written:  %s\nexecuted: %s", got, want)
		}
	})
}

// A selection whose every field is skipped renders an empty object, by
// the generated execution (the one shape Render does not write).
func TestRenderEmptySelection(t *testing.T) {
	_, open := setup(t)
	s := open(`subscription { onNotificationReceived(userName: "a") { id @skip(if: true) } }`, nil)
	m := &wire.Message{V: 1, ID: "x", Text: "hi", TS: 1_700_000_000_123, Scope: wire.ScopePerson}
	if got := string(s.Render(m)); s.Written() || got != `{"data":{"onNotificationReceived":{}}}` {
		t.Fatalf("written %v, rendered %s", s.Written(), got)
	}
}
