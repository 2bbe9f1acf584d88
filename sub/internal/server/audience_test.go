package server_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/sub/internal/server"
	"github.com/oshirase/oshirase/wire"
)

func channel(t *testing.T, tenant string, scope wire.Scope, id string) wire.Channel {
	t.Helper()
	ch, err := wire.NewChannel(tenant, scope, id)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func sorted(chs []wire.Channel) []wire.Channel {
	out := slices.Clone(chs)
	slices.Sort(out)
	return out
}

// AUTH_MODE=none believes userName: the user's own channel, the demo
// tenant's company channel and the public one — never a store's.
func TestTrustingAudience(t *testing.T) {
	got, err := server.TrustingAudience{}.Channels(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.Channel{
		channel(t, wire.DemoTenant, wire.ScopePerson, "bob"),
		channel(t, wire.DemoTenant, wire.ScopeCompany, ""),
		wire.PublicChannel(),
	}
	if !slices.Equal(sorted(got), sorted(want)) {
		t.Fatalf("channels %v, want %v", got, want)
	}
	for _, bad := range []string{"", strings.Repeat("b", wire.MaxNameBytes+1), "bob\x00", "bob\u200b"} {
		if _, err := (server.TrustingAudience{}).Channels(context.Background(), bad); !errors.Is(err, wire.ErrInvalidName) {
			t.Errorf("userName %q: err %v, want ErrInvalidName", bad, err)
		}
	}
}

// AUTH_MODE=jwt derives every channel from the verified identity: its own
// person channel, its store's when it has one, its company's and public —
// and userName must be the token's own user.
func TestTokenAudience(t *testing.T) {
	withStore := auth.WithIdentity(context.Background(), auth.Identity{Tenant: "acme", User: "bob", Store: "s1"})
	got, err := server.TokenAudience{}.Channels(withStore, "bob")
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.Channel{
		channel(t, "acme", wire.ScopePerson, "bob"),
		channel(t, "acme", wire.ScopeStore, "s1"),
		channel(t, "acme", wire.ScopeCompany, ""),
		wire.PublicChannel(),
	}
	if !slices.Equal(sorted(got), sorted(want)) {
		t.Fatalf("channels %v, want %v", got, want)
	}

	noStore := auth.WithIdentity(context.Background(), auth.Identity{Tenant: "acme", User: "bob"})
	got, err = server.TokenAudience{}.Channels(noStore, "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range got {
		if _, scope, _, _ := wire.ParseChannel(string(ch)); scope == wire.ScopeStore || len(got) != 3 {
			t.Fatalf("without a store: %v", got)
		}
	}

	for _, tc := range []struct {
		name     string
		ctx      context.Context
		userName string
	}{
		{"another user", noStore, "alice"},
		{"no identity", context.Background(), "bob"},
		{"publisher credential without a user", auth.WithIdentity(context.Background(), auth.Identity{Tenant: "acme", Publisher: true}), ""},
		{"platform credential without a tenant", auth.WithIdentity(context.Background(), auth.Identity{User: "ops", Platform: true}), "ops"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chs, err := server.TokenAudience{}.Channels(tc.ctx, tc.userName)
			if !errors.Is(err, errkind.ErrForbidden) {
				t.Fatalf("channels %v, err %v; want ErrForbidden", chs, err)
			}
		})
	}
}
