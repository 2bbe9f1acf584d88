package envconf

import "github.com/oshirase/oshirase/service/auth"

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
