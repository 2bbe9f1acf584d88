package compose_test

import (
	"testing"

	"github.com/oshirase/oshirase/dev/harness"
)

// The jwt override is a valid compose file, really switches both services
// to jwt mode, and the binaries start with exactly its environment.
func TestComposeJWTOverride(t *testing.T) {
	p := loadProject(t, "docker-compose.jwt.yml")
	r := harness.StartRedis(t)
	for name := range services {
		env := p.Services[name].Environment
		if v := env["AUTH_MODE"]; v == nil || *v != "jwt" {
			t.Fatalf("%s: AUTH_MODE = %v", name, v)
		}
		var kv []string
		for k, v := range env {
			if v != nil && k != "PORT" && k != "REDIS_URL" { // the harness picks these
				kv = append(kv, k+"="+*v)
			}
		}
		// Start waits for /readyz: the service accepted the whole configuration.
		if name == "pub" {
			harness.StartPub(t, r, kv...)
		} else {
			harness.StartSub(t, r, kv...)
		}
	}
}
