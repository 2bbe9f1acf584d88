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
	if c.Port != 8080 || c.MaxTextBytes != 4<<10 || c.PublishTimeout != 3*time.Second || c.ShutdownTimeout != 10*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}

// A zero the operator wrote is never silently turned into the default.
func TestZeroIsRefusedOrMeant(t *testing.T) {
	for _, name := range []string{"MAX_TEXT_BYTES", "PUBLISH_TIMEOUT"} {
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
