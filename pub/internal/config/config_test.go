package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/pub/internal/config"
	"github.com/oshirase/oshirase/service/auth"
)

func lookup(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Unset variables take the defaults the README documents.
func TestDefaults(t *testing.T) {
	c, err := config.Load(lookup())
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.MaxTextBytes != 4<<10 || c.PublishTimeout != 3*time.Second || c.ShutdownTimeout != 10*time.Second ||
		c.MaxBodyBytes != 1<<20 || c.MaxBatch != 1000 || c.IdempotencyTTL != 24*time.Hour {
		t.Fatalf("defaults: %+v", c)
	}
}

// A zero the operator wrote is never silently turned into the default.
func TestZeroIsRefusedOrMeant(t *testing.T) {
	for _, name := range []string{"MAX_TEXT_BYTES", "PUBLISH_TIMEOUT", "MAX_BATCH", "IDEMPOTENCY_TTL"} {
		for _, zero := range []string{"0", "0s", "0KiB"} {
			if _, err := config.Load(lookup(name, zero)); err == nil || !strings.Contains(err.Error(), name+":") {
				t.Errorf("%s=%s: err %v, want it refused, naming %s", name, zero, err, name)
			}
		}
	}
	c, err := config.Load(lookup("SHUTDOWN_TIMEOUT", "0s", "PORT", "0"))
	if err != nil || c.ShutdownTimeout != 0 || c.Port != 0 {
		t.Fatalf("SHUTDOWN_TIMEOUT=0s PORT=0: %+v, %v; want both kept as 0", c.Common, err)
	}
	// In jwt mode the JWT durations follow the same rule.
	jwt := []string{"AUTH_MODE", "jwt", "JWT_SECRET", "0123456789abcdef0123456789abcdef", "ALLOWED_ORIGINS", "http://app.test"}
	c, err = config.Load(lookup(append(jwt, "JWT_LEEWAY", "0s")...))
	if err != nil || c.JWT.Leeway != auth.NoLeeway {
		t.Fatalf("JWT_LEEWAY=0s: leeway %s, %v; want auth.NoLeeway", c.JWT.Leeway, err)
	}
	if _, err := config.Load(lookup(append(jwt, "JWT_JWKS_REFRESH", "0s")...)); err == nil || !strings.Contains(err.Error(), "JWT_JWKS_REFRESH") {
		t.Fatalf("JWT_JWKS_REFRESH=0s: %v; want it refused", err)
	}
}

// PUBLISH_RATE is off by default; its burst defaults to the rate rounded
// up; nonsense is refused naming the variable.
func TestPublishRate(t *testing.T) {
	c, err := config.Load(lookup())
	if err != nil || c.PublishRate != 0 || c.PublishBurst != 1 {
		t.Fatalf("defaults: rate %g burst %d, %v", c.PublishRate, c.PublishBurst, err)
	}
	c, err = config.Load(lookup("PUBLISH_RATE", "2.5", "TRUSTED_PROXIES", "10.0.0.0/8"))
	if err != nil || c.PublishRate != 2.5 || c.PublishBurst != 3 || len(c.TrustedProxies) != 1 {
		t.Fatalf("PUBLISH_RATE=2.5: rate %g burst %d proxies %v, %v", c.PublishRate, c.PublishBurst, c.TrustedProxies, err)
	}
	c, err = config.Load(lookup("PUBLISH_RATE", "100", "PUBLISH_BURST", "20"))
	if err != nil || c.PublishBurst != 20 {
		t.Fatalf("PUBLISH_BURST=20: %d, %v", c.PublishBurst, err)
	}
	for _, kv := range [][2]string{{"PUBLISH_RATE", "-1"}, {"PUBLISH_RATE", "fast"}, {"PUBLISH_BURST", "0"}, {"TRUSTED_PROXIES", "10.0.0.0/40"}} {
		if _, err := config.Load(lookup(kv[0], kv[1])); err == nil || !strings.Contains(err.Error(), kv[0]+":") {
			t.Errorf("%s=%s: err %v, want it refused, naming %s", kv[0], kv[1], err, kv[0])
		}
	}
}
