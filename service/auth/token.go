package auth

import (
	"net/http"
	"strings"
)

// TokenFromRequest returns the bearer token of r: the Authorization header
// ("Bearer <token>", scheme case-insensitive) first, then, if cookieName is
// not empty, that cookie. It returns "" when there is none. Tokens in the
// query string are deliberately not read: URLs end up in logs.
func TokenFromRequest(r *http.Request, cookieName string) string {
	if r == nil {
		return ""
	}
	if tok, ok := bearer(r.Header.Get("Authorization")); ok && tok != "" {
		return tok
	}
	if cookieName != "" {
		if c, err := r.Cookie(cookieName); err == nil {
			return strings.TrimSpace(c.Value)
		}
	}
	return ""
}

// TokenFromInitPayload returns the token a WebSocket client sent in its
// connection_init payload (Apollo's connectionParams): the first non-empty
// of "Authorization", "authorization" — with or without a "Bearer " prefix —
// and "authToken", then the same keys under a nested "headers" object, as
// some clients send. It returns "" when there is none.
func TokenFromInitPayload(payload map[string]any) string {
	if tok := tokenFromMap(payload); tok != "" {
		return tok
	}
	if h, ok := payload["headers"].(map[string]any); ok {
		return tokenFromMap(h)
	}
	return ""
}

func tokenFromMap(m map[string]any) string {
	for _, key := range [...]string{"Authorization", "authorization"} {
		if s, ok := m[key].(string); ok {
			if tok, isBearer := bearer(s); isBearer {
				s = tok
			}
			// Another scheme (Basic …) leaves a space: not a token.
			if s = strings.TrimSpace(s); s != "" && !strings.ContainsRune(s, ' ') {
				return s
			}
		}
	}
	if s, ok := m["authToken"].(string); ok {
		return strings.TrimSpace(s)
	}
	return ""
}

// bearer strips a "Bearer " prefix, matching the scheme case-insensitively
// (RFC 9110); ok is false if h does not have one.
func bearer(h string) (token string, ok bool) {
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}
