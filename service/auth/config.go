package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Config configures a [Verifier]. Exactly one key source — HMACSecret,
// PublicKeyPEM or JWKSURL — must be set. Every other field has a usable zero
// value, stated in its comment, that [NewVerifier] fills in.
type Config struct {
	// HMACSecret verifies HS256 (and HS384/HS512) tokens. Use at least 32
	// random bytes; shorter secrets are accepted with a warning, for local
	// tries only.
	HMACSecret []byte
	// PublicKeyPEM verifies tokens signed by one asymmetric key: a PEM
	// "PUBLIC KEY" (RSA ≥ 2048 bits, ECDSA P-256/P-384/P-521 or Ed25519),
	// "RSA PUBLIC KEY" or "CERTIFICATE" block. Private keys are refused.
	PublicKeyPEM []byte
	// JWKSURL is fetched once by NewVerifier (which fails if it cannot be)
	// and then every JWKSRefresh; a token naming an unknown kid triggers an
	// extra fetch, at most once per JWKSRefetchMin. Only RSA, EC and OKP
	// (Ed25519) signature keys are used; symmetric keys in the set are
	// ignored.
	JWKSURL string
	// JWKSRefresh is how often the key set is refetched. Zero means 5m.
	JWKSRefresh time.Duration
	// JWKSRefetchMin is the least time between two fetches triggered by an
	// unknown kid, so that made-up kids cannot flood the key server. Zero
	// means 30s.
	JWKSRefetchMin time.Duration

	// Issuer, when set, must equal the token's iss. Empty means iss is not
	// checked.
	Issuer string
	// Audience, when set, must be among the token's aud. Empty means aud is
	// not checked.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means 30s;
	// NoLeeway means none (exp, nbf and iat are checked to the second).
	Leeway time.Duration

	// UserClaim names the claim holding the user id. Empty means "sub".
	UserClaim string
	// TenantClaim names the claim holding the tenant. Empty means "tenant".
	TenantClaim string
	// StoreClaim names the optional claim holding the store. Empty means
	// "store".
	StoreClaim string
	// RolesClaim names the claim holding the roles, a string or an array of
	// strings. Empty means "roles".
	RolesClaim string
	// PublisherRole is the role that makes a publisher. Empty means
	// "publisher".
	PublisherRole string
	// PlatformRole is the role that makes a platform credential. Empty means
	// "platform".
	PlatformRole string

	// HTTPClient fetches the JWKS. Nil means a client of the verifier's own
	// with a 10s timeout, whose idle connections Close shuts.
	HTTPClient *http.Client
	// Logger receives key-set refreshes and their failures. Nil means
	// discard.
	Logger *slog.Logger
}

// Defaults applied by NewVerifier to zero fields.
const (
	DefaultJWKSRefresh    = 5 * time.Minute
	DefaultJWKSRefetchMin = 30 * time.Second
	DefaultLeeway         = 30 * time.Second
	DefaultUserClaim      = "sub"
	DefaultTenantClaim    = "tenant"
	DefaultStoreClaim     = "store"
	DefaultRolesClaim     = "roles"
	DefaultPublisherRole  = "publisher"
	DefaultPlatformRole   = "platform"
	defaultHTTPTimeout    = 10 * time.Second
)

// NoLeeway, as Config.Leeway, allows no clock skew at all. (A zero Leeway
// means the default, as every zero field of Config does.)
const NoLeeway time.Duration = -1

// withDefaults returns c with zero fields filled and reports configuration
// mistakes.
func (c Config) withDefaults() (Config, error) {
	sources := 0
	for _, set := range []bool{len(c.HMACSecret) > 0, len(c.PublicKeyPEM) > 0, c.JWKSURL != ""} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return c, fmt.Errorf("auth: config needs exactly one of HMACSecret, PublicKeyPEM, JWKSURL (%d set)", sources)
	}
	if c.JWKSURL != "" {
		u, err := url.Parse(c.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return c, fmt.Errorf("auth: JWKS URL %q is not an http(s) URL", c.JWKSURL)
		}
	}
	if c.Leeway < 0 && c.Leeway != NoLeeway || c.JWKSRefresh < 0 || c.JWKSRefetchMin < 0 {
		return c, errors.New("auth: Leeway, JWKSRefresh and JWKSRefetchMin must not be negative")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.JWKSRefresh, DefaultJWKSRefresh)
	def(&c.JWKSRefetchMin, DefaultJWKSRefetchMin)
	def(&c.Leeway, DefaultLeeway)
	if c.Leeway == NoLeeway {
		c.Leeway = 0
	}
	str := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	str(&c.UserClaim, DefaultUserClaim)
	str(&c.TenantClaim, DefaultTenantClaim)
	str(&c.StoreClaim, DefaultStoreClaim)
	str(&c.RolesClaim, DefaultRolesClaim)
	str(&c.PublisherRole, DefaultPublisherRole)
	str(&c.PlatformRole, DefaultPlatformRole)
	if c.PublisherRole == c.PlatformRole {
		return c, fmt.Errorf("auth: publisher and platform role are both %q", c.PlatformRole)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
