package auth_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/auth/authtest"
)

func TestConfigFromEnv(t *testing.T) {
	k := getKeys(t)
	pemFile := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(pemFile, k.ec.PublicPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}

	cfg, err := auth.ConfigFromEnv(env("JWT_SECRET", "dev-secret", "JWT_LEEWAY", "5s", "JWT_JWKS_REFRESH", "1m",
		"JWT_ISSUER", "https://idp", "JWT_AUDIENCE", "oshirase", "JWT_CLAIM_TENANT", "org", "JWT_ROLE_PLATFORM", "root"))
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.HMACSecret) != "dev-secret" || cfg.Leeway != 5*time.Second || cfg.JWKSRefresh != time.Minute ||
		cfg.Issuer != "https://idp" || cfg.Audience != "oshirase" || cfg.TenantClaim != "org" || cfg.PlatformRole != "root" {
		t.Fatalf("cfg = %+v", cfg)
	}

	cfg, err = auth.ConfigFromEnv(env("JWT_PUBLIC_KEY_FILE", pemFile))
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, cfg)
	if _, err := v.Verify(t.Context(), userToken(t, k.ec)); err != nil {
		t.Fatalf("Verify with key from file: %v", err)
	}

	errs := []struct {
		env  func(string) string
		want string
	}{
		{env(), "set exactly one of JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_PUBLIC_KEY, JWT_JWKS_URL (set: none)"},
		{env("JWT_SECRET", "x", "JWT_JWKS_URL", "https://idp"), "(set: JWT_SECRET, JWT_JWKS_URL)"},
		{env("JWT_PUBLIC_KEY_FILE", filepath.Join(t.TempDir(), "missing.pem")), "JWT_PUBLIC_KEY_FILE"},
		{env("JWT_SECRET", "x", "JWT_LEEWAY", "30"), `JWT_LEEWAY="30"`},
		{env("JWT_SECRET", "x", "JWT_JWKS_REFRESH", "-1m"), `JWT_JWKS_REFRESH="-1m"`},
		{env("JWT_SECRET", "x", "JWT_JWKS_REFRESH", "0s"), `JWT_JWKS_REFRESH="0s": want a positive duration`},
		{env("JWT_SECRET", "x", "JWT_LEEWAY", "-1s"), `JWT_LEEWAY="-1s"`},
	}
	for _, tt := range errs {
		if _, err := auth.ConfigFromEnv(tt.env); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want %q", err, tt.want)
		}
	}
}

// JWT_LEEWAY=0s means no leeway at all, not the 30s default that a zero
// Config.Leeway stands for; unset means the default.
func TestConfigFromEnvZeroLeeway(t *testing.T) {
	k := getKeys(t)
	secret := string(k.hmac.Public.([]byte))
	expiredBy := func(d time.Duration) string {
		return k.hmac.Sign(t, user(authtest.Claims("bob", "acme", time.Hour), set("exp", time.Now().Add(-d).Unix())))
	}
	notYet := k.hmac.Sign(t, user(authtest.Claims("bob", "acme", time.Hour), set("nbf", time.Now().Add(5*time.Second).Unix())))
	for _, tt := range []struct {
		leeway string
		accept bool // a token 5s past exp, or 5s before nbf
	}{
		{"", true}, {"30s", true}, {"0s", false}, {"0", false}, {"1s", false},
	} {
		cfg, err := auth.ConfigFromEnv(func(name string) string {
			return map[string]string{"JWT_SECRET": secret, "JWT_LEEWAY": tt.leeway}[name]
		})
		if err != nil {
			t.Fatalf("JWT_LEEWAY=%q: %v", tt.leeway, err)
		}
		v := newVerifier(t, cfg)
		for name, tok := range map[string]string{"expired 5s ago": expiredBy(5 * time.Second), "nbf in 5s": notYet} {
			_, err := v.Verify(t.Context(), tok)
			if tt.accept && err != nil {
				t.Errorf("JWT_LEEWAY=%q: a token %s refused (%v); want it within the leeway", tt.leeway, name, err)
			}
			if !tt.accept && err == nil {
				t.Errorf("JWT_LEEWAY=%q: a token %s accepted; want no leeway beyond %q", tt.leeway, name, tt.leeway)
			}
		}
		if _, err := v.Verify(t.Context(), k.hmac.Sign(t, authtest.Claims("bob", "acme", time.Hour))); err != nil {
			t.Errorf("JWT_LEEWAY=%q: a valid token refused: %v", tt.leeway, err)
		}
	}
}
