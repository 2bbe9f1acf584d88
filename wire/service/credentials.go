package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/oshirase/oshirase/wire/auth"
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

// WriteAuthError answers a failed authentication as a GraphQL error.
func WriteAuthError(w http.ResponseWriter, err error) {
	status, code := http.StatusUnauthorized, "UNAUTHENTICATED"
	if errors.Is(err, ErrForbidden) {
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

// AuthMode is how a service learns who its callers are.
type AuthMode string

const (
	// AuthNone trusts what clients say: the original demo behaviour.
	AuthNone AuthMode = "none"
	// AuthJWT verifies a token on every connection and request.
	AuthJWT AuthMode = "jwt"
)

// LoadAuth reads AUTH_MODE and, in jwt mode, the JWT_* variables
// (auth.ConfigFromEnv); optional says a missing key source is acceptable
// (pub may rely on API keys alone).
func (e *Env) LoadAuth(optional bool) (AuthMode, auth.Config, bool) {
	mode := AuthMode(e.OneOf("AUTH_MODE", string(AuthNone), string(AuthNone), string(AuthJWT)))
	if mode != AuthJWT {
		return mode, auth.Config{}, false
	}
	getenv := func(k string) string { v, _ := e.lookup(k); return v }
	anyKey := false
	for _, k := range []string{"JWT_SECRET", "JWT_PUBLIC_KEY_FILE", "JWT_PUBLIC_KEY", "JWT_JWKS_URL"} {
		anyKey = anyKey || getenv(k) != ""
	}
	if optional && !anyKey {
		return mode, auth.Config{}, false
	}
	cfg, err := auth.ConfigFromEnv(getenv)
	if err != nil {
		e.Fail("AUTH_MODE=jwt", "%v", err)
		return mode, auth.Config{}, false
	}
	return mode, cfg, true
}
