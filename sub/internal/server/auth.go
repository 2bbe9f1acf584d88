package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/sub/internal/wsconn"
)

// authenticator verifies tokens for AUTH_MODE=jwt.
type authenticator struct {
	v      *auth.Verifier
	cookie string
}

type requestTokenKey struct{}

// http authenticates a POST or SSE request from its Authorization header
// or cookie.
func (a authenticator) http(r *http.Request) (context.Context, error) {
	id, err := a.v.Verify(r.Context(), auth.TokenFromRequest(r, a.cookie))
	if err != nil {
		return nil, err
	}
	return auth.WithIdentity(r.Context(), id), nil
}

// keepRequestToken remembers a WebSocket upgrade's header or cookie token
// for connection_init, whose payload may carry none.
func (a authenticator) keepRequestToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := auth.TokenFromRequest(r, a.cookie); tok != "" {
			r = r.WithContext(context.WithValue(r.Context(), requestTokenKey{}, tok))
		}
		next.ServeHTTP(w, r)
	})
}

// initFunc authenticates a WebSocket at connection_init: the token in the
// payload ("Authorization": "Bearer …" or "authToken"), else the upgrade
// request's. A rejected connection is closed with 4403; an accepted one is
// closed with 4403 when its token expires (exp plus the leeway, as on SSE).
func (a authenticator) initFunc(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	tok := auth.TokenFromInitPayload(payload)
	if tok == "" {
		tok, _ = ctx.Value(requestTokenKey{}).(string)
	}
	id, err := a.v.Verify(ctx, tok)
	if err != nil {
		ctx = transport.WithWebsocketCloseCode(ctx, wsconn.CloseForbidden)
		return transport.AppendCloseReason(ctx, "Forbidden"), nil, err
	}
	ctx = auth.WithIdentity(ctx, id)
	if !id.ExpiresAt.IsZero() {
		expire := time.AfterFunc(time.Until(id.ExpiresAt), func() {
			_ = wsconn.Close(ctx, wsconn.CloseForbidden, "Forbidden: token expired")
		})
		context.AfterFunc(ctx, func() { expire.Stop() })
	}
	return ctx, nil, nil
}

// credentialExpiry is when a stream must end because its credential does
// (exp plus the leeway): a stream is served exactly as long as its token
// would be accepted, then ends with UNAUTHENTICATED.
func credentialExpiry(ctx context.Context) (time.Time, error) {
	if id, ok := auth.FromContext(ctx); ok {
		return id.ExpiresAt, auth.ErrExpired
	}
	return time.Time{}, nil
}

// forbidden is the error for a subscription the token does not allow.
func forbidden(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errkind.ErrForbidden, fmt.Sprintf(format, args...))
}
