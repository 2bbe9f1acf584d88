package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/sub/internal/limit"
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

// connContext keeps of a WebSocket's upgrade request only the token it
// carried, for connection_init.
func connContext(r *http.Request) context.Context {
	ctx := context.Background()
	if le := limit.FromContext(r.Context()); le != nil {
		ctx = limit.WithLease(ctx, le)
	}
	if tok, ok := r.Context().Value(requestTokenKey{}).(string); ok {
		ctx = context.WithValue(ctx, requestTokenKey{}, tok)
	}
	return ctx
}

// init authenticates a WebSocket at connection_init: the token in the
// payload ("Authorization": "Bearer …" or "authToken"), else the upgrade
// request's. The transport closes a refused connection with 4403, and an
// accepted one with 4403 when its token expires (expiry).
func (a authenticator) init(ctx context.Context, payload map[string]any) (context.Context, error) {
	tok := auth.TokenFromInitPayload(payload)
	if tok == "" {
		tok, _ = ctx.Value(requestTokenKey{}).(string)
	}
	id, err := a.v.Verify(ctx, tok)
	if err != nil {
		return ctx, err
	}
	return auth.WithIdentity(ctx, id), nil
}

// expiry is when the credential of ctx expires (zero: never, or none).
func expiry(ctx context.Context) time.Time {
	id, _ := auth.FromContext(ctx)
	return id.ExpiresAt
}

// forbidden is the error for a subscription the token does not allow.
func forbidden(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errkind.ErrForbidden, fmt.Sprintf(format, args...))
}
