package httpserve

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/errkind"
)

// Authenticator checks the credentials of one HTTP request and returns its
// context carrying the caller's identity (auth.WithIdentity).
type Authenticator func(r *http.Request) (context.Context, error)

// RequireCredentials authenticates every request except CORS preflights and
// WebSocket upgrades (those authenticate at connection_init, where browsers
// can put a token). A request that fails gets HTTP 401 (403 for a known
// caller that may not do this) with a GraphQL error body.
func RequireCredentials(authenticate Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions || strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next.ServeHTTP(w, r)
			return
		}
		ctx, err := authenticate(r)
		if err != nil {
			WriteAuthError(w, err)
			return
		}
		if id, ok := auth.FromContext(ctx); ok && !id.ExpiresAt.IsZero() {
			// A stream (SSE) ends when its credential does.
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, id.ExpiresAt)
			defer cancel()
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// WriteAuthError answers a failed authentication as a GraphQL error:
// 401 UNAUTHENTICATED, or 403 FORBIDDEN for a known caller that may not do
// this.
func WriteAuthError(w http.ResponseWriter, err error) {
	if errors.Is(err, errkind.ErrForbidden) {
		errkind.WriteHTTP(w, http.StatusForbidden, errkind.CodeForbidden, err.Error())
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="oshirase"`)
	errkind.WriteHTTP(w, http.StatusUnauthorized, errkind.CodeUnauthenticated, err.Error())
}
