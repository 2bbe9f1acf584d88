package wire_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/oshirase/oshirase/wire"
)

func TestChannelNamesAreDistinct(t *testing.T) {
	names := []string{
		"bob", "Bob", "bоb" /* Cyrillic о */, "a:b", "a", "b", "*", "?", "[", "]", "{", "}",
		"a/b", "a%2Fb", "%", "%25", "a b", "a\tb" + "", "ü", "u\u0308", "x}", "{x", "p", "c",
	}
	seen := map[wire.Channel]string{}
	for _, tenant := range []string{"acme", "acme/p", "ac", "me"} {
		for _, scope := range []wire.Scope{wire.ScopePerson, wire.ScopeStore} {
			for _, n := range names {
				ch, err := wire.NewChannel(tenant, scope, n)
				if err != nil {
					if errors.Is(err, wire.ErrInvalidName) {
						continue
					}
					t.Fatalf("NewChannel(%q, %s, %q): %v", tenant, scope, n, err)
				}
				key := tenant + "|" + string(scope) + "|" + n
				if prev, dup := seen[ch]; dup {
					t.Fatalf("%q and %q share channel %q", prev, key, ch)
				}
				seen[ch] = key
				gotT, gotS, gotID, err := wire.ParseChannel(string(ch))
				if err != nil || gotT != tenant || gotS != scope || gotID != n {
					t.Fatalf("ParseChannel(%q) = %q %q %q %v; want %q %q %q", ch, gotT, gotS, gotID, err, tenant, scope, n)
				}
				if strings.ContainsAny(string(ch)[len("oshirase:v1:{"):len(ch)-1], "{}*?[]: \n") {
					t.Fatalf("channel %q has a Redis-significant byte inside its tag", ch)
				}
			}
		}
	}
}

func TestValidateNameRejects(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"newline", "bob\nalice"},
		{"nul", "bob\x00"},
		{"escape", "\x1b[31m"},
		{"zero width joiner", "bo\u200db"},
		{"bidi override", "\u202ebob"},
		{"bad utf8", "\xff"},
		{"too long", strings.Repeat("x", wire.MaxNameBytes+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := wire.ValidateName("user", tc.in, 0); !errors.Is(err, wire.ErrInvalidName) {
				t.Fatalf("ValidateName(%q) = %v, want ErrInvalidName", tc.in, err)
			}
			if _, err := wire.PersonChannel("acme", tc.in); err == nil {
				t.Fatalf("PersonChannel accepted %q", tc.in)
			}
		})
	}
}

func TestCompanyAndPublicChannels(t *testing.T) {
	c1, _ := wire.NewChannel("acme", wire.ScopeCompany, "ignored")
	c2, _ := wire.NewChannel("acme", wire.ScopeCompany, "")
	if c1 != c2 {
		t.Fatalf("company channel depends on id: %q vs %q", c1, c2)
	}
	p, _ := wire.NewChannel("acme", wire.ScopePublic, "x")
	if p != wire.PublicChannel() {
		t.Fatalf("public channel = %q", p)
	}
	if got := c1.CountKey(); got != "oshirase:v1:count:{acme/c}" {
		t.Fatalf("CountKey = %q", got)
	}
	if got := c1.HistoryKey(); got != "oshirase:v1:hist:{acme/c}" {
		t.Fatalf("HistoryKey = %q", got)
	}
	if got := c1.MetaKey(); got != "oshirase:v1:meta:{acme/c}" {
		t.Fatalf("MetaKey = %q", got)
	}
	if _, s, _, err := wire.ParseChannel(string(wire.PublicChannel())); err != nil || s != wire.ScopePublic {
		t.Fatalf("ParseChannel(public) = %q, %v", s, err)
	}
	for _, bad := range []string{"", "bob", "oshirase:v1:", "oshirase:v1:{x}", "oshirase:v1:{a/p}", "oshirase:v1:{a/p/%4}", "oshirase:v1:{a/q/b}"} {
		if _, _, _, err := wire.ParseChannel(bad); err == nil {
			t.Errorf("ParseChannel(%q) accepted", bad)
		}
	}
}

func FuzzChannelInjective(f *testing.F) {
	f.Add("acme", "bob", "acme", "bob2")
	f.Add("a/p", "b", "a", "p/b")
	f.Fuzz(func(t *testing.T, t1, u1, t2, u2 string) {
		c1, err1 := wire.PersonChannel(t1, u1)
		c2, err2 := wire.PersonChannel(t2, u2)
		if err1 != nil || err2 != nil {
			return
		}
		if (c1 == c2) != (t1 == t2 && u1 == u2) {
			t.Fatalf("(%q,%q)->%q and (%q,%q)->%q", t1, u1, c1, t2, u2, c2)
		}
	})
}
