// Package access decides what a publisher may address: a tenant-bound
// credential reaches only its own tenant; a platform credential may address
// any tenant and the public channel.
package access

import (
	"context"
	"fmt"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/wire"
)

// Target is one audience a publisher asked for.
type Target struct {
	Tenant string // "" means the caller's own
	Scope  wire.Scope
	To     string // user or store; empty for company and public
}

// Resolve checks that caller may publish to t and fills in the tenant.
func Resolve(caller auth.Identity, t Target) (Target, error) {
	if !caller.Publisher && !caller.Platform {
		return Target{}, fmt.Errorf("%w: this credential may not publish (it needs the publisher role)", errkind.ErrForbidden)
	}
	own := caller.Tenant
	if own == auth.PlatformTenant {
		own = ""
	}
	switch {
	case t.Scope == wire.ScopePublic:
		if !caller.Platform {
			return Target{}, fmt.Errorf("%w: only platform credentials may publish to everyone", errkind.ErrForbidden)
		}
		if t.To != "" || t.Tenant != "" {
			return Target{}, fmt.Errorf("%w: a PUBLIC notice takes neither to nor tenant", errkind.ErrBadInput)
		}
		return t, nil
	case t.Tenant == "":
		if own == "" {
			return Target{}, fmt.Errorf("%w: platform credentials have no tenant of their own: name one (publish(input: {tenant: …}))", errkind.ErrBadInput)
		}
		t.Tenant = own
	case t.Tenant != own && !caller.Platform:
		return Target{}, fmt.Errorf("%w: this credential may only publish to its own tenant", errkind.ErrForbidden)
	}
	switch t.Scope {
	case wire.ScopeCompany:
		if t.To != "" {
			return Target{}, fmt.Errorf("%w: a COMPANY notice takes no to", errkind.ErrBadInput)
		}
	case wire.ScopePerson, wire.ScopeStore:
		if t.To == "" {
			return Target{}, fmt.Errorf("%w: to is empty", errkind.ErrBadInput)
		}
	default:
		return Target{}, fmt.Errorf("%w: unknown scope %q", errkind.ErrBadInput, t.Scope)
	}
	return t, nil
}

// credentialKey carries the name of the credential a request came with.
type credentialKey struct{}

// WithCredential records which credential the request came with: the
// API key itself, or a token's tenant and subject (so a refreshed token
// is the same publisher). It keeps publishers' idempotency keys apart;
// only a digest of it is ever stored.
func WithCredential(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, credentialKey{}, name)
}

// Credential is what WithCredential recorded ("" if nothing).
func Credential(ctx context.Context) string {
	name, _ := ctx.Value(credentialKey{}).(string)
	return name
}
