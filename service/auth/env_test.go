package auth_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/service/auth"
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
	}
	for _, tt := range errs {
		if _, err := auth.ConfigFromEnv(tt.env); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want %q", err, tt.want)
		}
	}
}
