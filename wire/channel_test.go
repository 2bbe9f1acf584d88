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
	if got := c1.IdempotencyKey("0f1e", "order-7:shipped"); got != "oshirase:v1:idem:{acme/c}:0f1e:order-7:shipped" {
		t.Fatalf("IdempotencyKey = %q", got)
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

// The escaping is the channel name's contract with every sub and pub
// instance (and with anyone reading Redis): exactly [A-Za-z0-9._~-] pass
// through, the bytes next to those ranges are percent-encoded with
// upper-case hex, and ParseChannel reads every hex digit back.
func TestChannelEscapingIsExact(t *testing.T) {
	for _, tc := range []struct{ tenant, id, want string }{
		{"azAZ09._~-", "bob", "oshirase:v1:{azAZ09._~-/p/bob}"},
		// '`' 0x60 < 'a', '{' 0x7B > 'z', '@' 0x40 < 'A', '[' 0x5B > 'Z',
		// '/' 0x2F < '0', ':' 0x3A > '9'.
		{"`{@[/:", "b", "oshirase:v1:{%60%7B%40%5B%2F%3A/p/b}"},
		{"a b)", "%", "oshirase:v1:{a%20b%29/p/%25}"},
		{"x", "ü", "oshirase:v1:{x/p/%C3%BC}"},
	} {
		ch, err := wire.PersonChannel(tc.tenant, tc.id)
		if err != nil {
			t.Fatalf("PersonChannel(%q, %q): %v", tc.tenant, tc.id, err)
		}
		if string(ch) != tc.want {
			t.Errorf("PersonChannel(%q, %q) = %q, want %q", tc.tenant, tc.id, ch, tc.want)
		}
		tenant, scope, id, err := wire.ParseChannel(tc.want)
		if err != nil || tenant != tc.tenant || scope != wire.ScopePerson || id != tc.id {
			t.Errorf("ParseChannel(%q) = %q %q %q %v, want %q person %q", tc.want, tenant, scope, id, err, tc.tenant, tc.id)
		}
	}
	store, err := wire.NewChannel("t", wire.ScopeStore, "s:1")
	if err != nil || store != "oshirase:v1:{t/s/s%3A1}" {
		t.Fatalf("store channel = %q, %v", store, err)
	}
	if tenant, scope, id, err := wire.ParseChannel(string(store)); err != nil || tenant != "t" || scope != wire.ScopeStore || id != "s:1" {
		t.Fatalf("ParseChannel(%q) = %q %q %q %v", store, tenant, scope, id, err)
	}
	company, err := wire.NewChannel("t", wire.ScopeCompany, "")
	if err != nil || company != "oshirase:v1:{t/c}" {
		t.Fatalf("company channel = %q, %v", company, err)
	}
	if tenant, scope, id, err := wire.ParseChannel(string(company)); err != nil || tenant != "t" || scope != wire.ScopeCompany || id != "" {
		t.Fatalf("ParseChannel(%q) = %q %q %q %v", company, tenant, scope, id, err)
	}
}

func TestParseChannelRejectsNonCanonical(t *testing.T) {
	for _, bad := range []string{
		"oshirase:v1:{a%2f/p/b}", // lower-case hex
		"oshirase:v1:{a%2G/p/b}", // not a hex digit
		"oshirase:v1:{a%:0/p/b}", // ':' follows '9'
		"oshirase:v1:{a%@0/p/b}", // '@' precedes 'A'
		"oshirase:v1:{a%/0/p/b}", // '/' precedes '0'
		"oshirase:v1:{a%2/p/b}",  // cut short
		"oshirase:v1:{%61/p/b}",  // 'a' escaped although it needs no escape
		"oshirase:v1:{a/c/x}",    // a company channel has no id
		"oshirase:v1:{a/p}",      // a person channel needs one
		"oshirase:v1:{a/s/b/c}",  // one part too many
		"oshirase:v1:{a/x/b}",    // unknown scope code
		"oshirase:v1:{a/p/%0A}",  // a newline in the id
		"oshirase:v1:{}",         // empty tag
		"oshirase:v1:{a/p/b",     // unclosed
		"oshirase:v1:a/p/b}",     // unopened
		"oshirase:v2:{a/p/b}",    // another version
		"oshirase:v1:{a}x",       // public channel with a tail
		"oshirase:v1:{/p/b}",     // empty tenant
	} {
		if tenant, scope, id, err := wire.ParseChannel(bad); err == nil {
			t.Errorf("ParseChannel(%q) = %q %q %q, want an error", bad, tenant, scope, id)
		}
	}
}

func TestValidateNameLimit(t *testing.T) {
	if err := wire.ValidateName("user", strings.Repeat("x", wire.MaxNameBytes), 0); err != nil {
		t.Fatalf("a name of exactly MaxNameBytes: %v", err)
	}
	if err := wire.ValidateName("user", strings.Repeat("x", wire.MaxNameBytes), -1); err != nil {
		t.Fatalf("max -1 means MaxNameBytes: %v", err)
	}
	if err := wire.ValidateName("user", "abc", 3); err != nil {
		t.Fatalf("3 bytes against a limit of 3: %v", err)
	}
	err := wire.ValidateName("user", "abcd", 3)
	if !errors.Is(err, wire.ErrInvalidName) || !strings.Contains(err.Error(), "user is 4 bytes, the limit is 3") {
		t.Fatalf("4 bytes against a limit of 3: %v", err)
	}
	if err := wire.ValidateName("tenant", "", 3); err == nil || !strings.Contains(err.Error(), "tenant is empty") {
		t.Fatalf("empty name: %v", err)
	}
}
