package access_test

import (
	"errors"
	"testing"

	"github.com/oshirase/oshirase/pub/internal/access"
	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/wire"
)

func TestResolve(t *testing.T) {
	acme := auth.Identity{Tenant: "acme", Publisher: true}
	platform := auth.Identity{Tenant: auth.PlatformTenant, Publisher: true, Platform: true}
	user := auth.Identity{Tenant: "acme", User: "bob"}
	for _, tc := range []struct {
		name   string
		caller auth.Identity
		in     access.Target
		want   access.Target
		err    error
	}{
		{"own tenant by default", acme, access.Target{Scope: wire.ScopePerson, To: "bob"}, access.Target{Tenant: "acme", Scope: wire.ScopePerson, To: "bob"}, nil},
		{"own tenant named", acme, access.Target{Tenant: "acme", Scope: wire.ScopeStore, To: "s1"}, access.Target{Tenant: "acme", Scope: wire.ScopeStore, To: "s1"}, nil},
		{"company", acme, access.Target{Scope: wire.ScopeCompany}, access.Target{Tenant: "acme", Scope: wire.ScopeCompany}, nil},
		{"other tenant", acme, access.Target{Tenant: "globex", Scope: wire.ScopePerson, To: "bob"}, access.Target{}, errkind.ErrForbidden},
		{"public needs platform", acme, access.Target{Scope: wire.ScopePublic}, access.Target{}, errkind.ErrForbidden},
		{"user token cannot publish", user, access.Target{Scope: wire.ScopePerson, To: "bob"}, access.Target{}, errkind.ErrForbidden},
		{"platform any tenant", platform, access.Target{Tenant: "globex", Scope: wire.ScopeCompany}, access.Target{Tenant: "globex", Scope: wire.ScopeCompany}, nil},
		{"platform public", platform, access.Target{Scope: wire.ScopePublic}, access.Target{Scope: wire.ScopePublic}, nil},
		{"platform needs a tenant", platform, access.Target{Scope: wire.ScopePerson, To: "bob"}, access.Target{}, errkind.ErrBadInput},
		{"person needs to", acme, access.Target{Scope: wire.ScopePerson}, access.Target{}, errkind.ErrBadInput},
		{"company takes no to", acme, access.Target{Scope: wire.ScopeCompany, To: "x"}, access.Target{}, errkind.ErrBadInput},
		{"public takes no tenant", platform, access.Target{Scope: wire.ScopePublic, Tenant: "acme"}, access.Target{}, errkind.ErrBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := access.Resolve(tc.caller, tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Resolve = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
