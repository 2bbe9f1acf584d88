package server

import (
	"context"
	"net/http"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/sub/internal/limit"
	"github.com/oshirase/oshirase/sub/internal/transport"
)

// admitLimited puts the connection limits in front of every stream the
// transport serves. In jwt mode a stream counts against its user's
// MAX_CONNECTIONS_PER_USER as soon as the user is known: before the
// upgrade when the request carries a valid token (an SSE request's
// identity, a WebSocket's header or cookie — refused with 429), else at
// connection_init (refused with close 4429).
func admitLimited(tcfg *transport.Config, lim *limit.Limits, authn authenticator) {
	perUser := authn.v != nil && lim.PerUser()
	tcfg.Admit = func(w http.ResponseWriter, r *http.Request) (context.Context, func(), bool) {
		user := ""
		if perUser {
			user = authn.userOf(r)
		}
		ctx, lease, ok := lim.Admit(w, r, user)
		if !ok {
			return nil, nil, false
		}
		return ctx, lease.Release, true
	}
	if !perUser {
		return
	}
	init := tcfg.Init
	tcfg.Init = func(ctx context.Context, payload map[string]any) (context.Context, error) {
		ctx, err := init(ctx, payload)
		if err != nil {
			return ctx, err
		}
		id, _ := auth.FromContext(ctx)
		return ctx, limit.FromContext(ctx).Bind(userKey(id))
	}
}

// userKey names a user for MAX_CONNECTIONS_PER_USER: the same user name
// in two tenants is two users.
func userKey(id auth.Identity) string { return id.Tenant + "\x00" + id.User }

// userOf is the user a stream request is known to come from before it
// starts: an SSE request's verified identity, or the identity of a valid
// token in a WebSocket upgrade's header or cookie; "" when unknown.
func (a authenticator) userOf(r *http.Request) string {
	if id, ok := auth.FromContext(r.Context()); ok {
		return userKey(id)
	}
	tok := auth.TokenFromRequest(r, a.cookie)
	if tok == "" {
		return ""
	}
	id, err := a.v.Verify(r.Context(), tok)
	if err != nil {
		return "" // connection_init refuses it (4403)
	}
	return userKey(id)
}
