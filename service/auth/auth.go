// Package auth owns identity for oshirase: it verifies the JWTs that
// browsers and backends present, turns their claims into an [Identity], and
// checks publisher API keys. Both services (pub and sub) use it, so a token
// that one accepts the other accepts too.
//
// Where a caller gets a token is up to it; [TokenFromRequest] and
// [TokenFromInitPayload] cover the HTTP and WebSocket cases. Every rejection
// wraps [ErrUnauthenticated], which the edge maps to HTTP 401 or WebSocket
// close code 4403; the error text is a short reason safe to show a client.
package auth

import (
	"errors"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrUnauthenticated is wrapped by every error that rejects a credential.
// Test for it with errors.Is.
var ErrUnauthenticated = errors.New("auth: unauthenticated")

// ErrExpired ends what a credential allowed once it passes
// Identity.ExpiresAt (a stream's context is cancelled with it as the
// cause). It wraps ErrUnauthenticated.
var ErrExpired = reject("token expired", nil)

// Identity is who a verified credential speaks for.
type Identity struct {
	// Tenant is the company the credential belongs to. Empty only for a
	// platform credential that names no tenant.
	Tenant string
	// User is the subject: a person for a user token, the calling service
	// for a publisher token (may be empty for an API key).
	User string
	// Store is optional: a sub-division of the tenant the user works in.
	Store string
	// Publisher is set for service credentials that may publish to their
	// own Tenant.
	Publisher bool
	// Platform is set for credentials that may address any tenant and the
	// public channel. A platform credential is also a Publisher.
	Platform bool
	// ExpiresAt is when the credential stops being valid: the token's exp
	// plus the verifier's leeway, the moment Verify starts refusing it.
	// Whatever ends with the credential (a stream, a WebSocket) ends then,
	// so a token is never both accepted and treated as expired. Zero for
	// an API key, which does not expire.
	ExpiresAt time.Time
}

// MaxClaimBytes bounds every identity claim value (user, tenant, store,
// role), so channel names built from them stay small.
const MaxClaimBytes = 256

// MaxTokenBytes bounds a raw token; anything longer is rejected before it is
// decoded.
const MaxTokenBytes = 16 << 10

// authError is a rejection: its text is the short reason, and it unwraps to
// ErrUnauthenticated and, when there is one, the underlying cause (kept for
// logs and errors.Is, never shown in Error).
type authError struct {
	reason string
	cause  error
}

func (e *authError) Error() string { return "auth: " + e.reason }

func (e *authError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrUnauthenticated}
	}
	return []error{ErrUnauthenticated, e.cause}
}

func reject(reason string, cause error) error {
	return &authError{reason: reason, cause: cause}
}

// checkValue reports why s is not acceptable as a claim value, or "" if it
// is. Control characters are refused because these values end up in logs
// and channel names.
func checkValue(s string) string {
	if s == "" {
		return "empty"
	}
	if len(s) > MaxClaimBytes {
		return "too long"
	}
	if !utf8.ValidString(s) {
		return "not UTF-8"
	}
	for _, r := range s {
		// The same rule as wire.ValidateName: names are compared byte for
		// byte, so invisible formatting characters (bidi overrides, zero
		// widths) would make look-alike identities.
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "has control characters"
		}
	}
	return ""
}
