package httpserve

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/oshirase/oshirase/service/errkind"
)

// Authenticator checks the credentials of one HTTP request and returns its
// context carrying the caller's identity (auth.WithIdentity).
type Authenticator func(r *http.Request) (context.Context, error)

// RequireCredentials authenticates every request except CORS preflights and
// WebSocket upgrades (those authenticate at connection_init, where browsers
// can put a token). A request that fails gets HTTP 401 (403 for a known
// caller that may not do this) with a GraphQL error body.
//
// A request is judged by its credential when it arrives and is not cut
// when the credential expires during it: a cancelled context makes gqlgen
// answer 200 with the body null, having run nothing — a publish silently
// lost. Its own limits bound it (PUBLISH_TIMEOUT). Streams, which would
// outlive their credential, end at Identity.ExpiresAt in the transport that
// serves them.
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
