package httpserve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/oshirase/oshirase/service/errkind"

	"github.com/oshirase/oshirase/service/auth"
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

// WriteAuthError answers a failed authentication as a GraphQL error.
func WriteAuthError(w http.ResponseWriter, err error) {
	status, code := http.StatusUnauthorized, "UNAUTHENTICATED"
	if errors.Is(err, errkind.ErrForbidden) {
		status, code = http.StatusForbidden, "FORBIDDEN"
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="oshirase"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message": err.Error(), "extensions": map[string]any{"code": code},
	}}})
}
