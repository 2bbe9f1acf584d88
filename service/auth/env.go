package auth

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// ConfigFromEnv builds a Config from the JWT_* variables that pub and sub
// share, read through getenv (pass os.Getenv; this package reads no
// environment by itself). Exactly one key source must be set:
//
//	JWT_SECRET           HMAC secret (HS256)
//	JWT_PUBLIC_KEY_FILE  path of a PEM public key (RS256, ES256, EdDSA)
//	JWT_PUBLIC_KEY       the PEM itself, for environments without files
//	JWT_JWKS_URL         JWKS endpoint of the identity provider
//
// and optionally, unset meaning the Config default:
//
//	JWT_JWKS_REFRESH     duration > 0, default 5m
//	JWT_ISSUER           required iss, default unchecked
//	JWT_AUDIENCE         required aud, default unchecked
//	JWT_LEEWAY           duration, default 30s; 0s means no leeway
//	JWT_CLAIM_USER       default sub
//	JWT_CLAIM_TENANT     default tenant
//	JWT_CLAIM_STORE      default store
//	JWT_CLAIM_ROLES      default roles
//	JWT_ROLE_PUBLISHER   default publisher
//	JWT_ROLE_PLATFORM    default platform
//
// Errors name the variable to fix.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	cfg := Config{
		JWKSURL:       get("JWT_JWKS_URL"),
		Issuer:        get("JWT_ISSUER"),
		Audience:      get("JWT_AUDIENCE"),
		UserClaim:     get("JWT_CLAIM_USER"),
		TenantClaim:   get("JWT_CLAIM_TENANT"),
		StoreClaim:    get("JWT_CLAIM_STORE"),
		RolesClaim:    get("JWT_CLAIM_ROLES"),
		PublisherRole: get("JWT_ROLE_PUBLISHER"),
		PlatformRole:  get("JWT_ROLE_PLATFORM"),
	}
	// The secret is taken as is: spaces may be part of it.
	if s := getenv("JWT_SECRET"); s != "" {
		cfg.HMACSecret = []byte(s)
	}
	if pemText := get("JWT_PUBLIC_KEY"); pemText != "" {
		cfg.PublicKeyPEM = []byte(pemText)
	}
	var set []string
	for _, name := range []string{"JWT_SECRET", "JWT_PUBLIC_KEY_FILE", "JWT_PUBLIC_KEY", "JWT_JWKS_URL"} {
		if getenv(name) != "" {
			set = append(set, name)
		}
	}
	if len(set) != 1 {
		return Config{}, fmt.Errorf("auth: set exactly one of JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_PUBLIC_KEY, JWT_JWKS_URL (set: %s)", orNone(set))
	}
	if path := get("JWT_PUBLIC_KEY_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("auth: JWT_PUBLIC_KEY_FILE: %w", err)
		}
		cfg.PublicKeyPEM = b
	}
	// A zero in Config means "the default"; a zero the operator wrote means
	// zero. So JWT_LEEWAY=0s becomes NoLeeway, and a zero refresh interval,
	// which means nothing, is refused rather than silently made 5m.
	if s := get("JWT_JWKS_REFRESH"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			return Config{}, fmt.Errorf("auth: JWT_JWKS_REFRESH=%q: want a positive duration such as 5m", s)
		}
		cfg.JWKSRefresh = v
	}
	if s := get("JWT_LEEWAY"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 {
			return Config{}, fmt.Errorf("auth: JWT_LEEWAY=%q: want a duration such as 30s, or 0s for none", s)
		}
		cfg.Leeway = v
		if v == 0 {
			cfg.Leeway = NoLeeway
		}
	}
	return cfg, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
