package compose_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"

	"github.com/oshirase/oshirase/dev/harness"
)

// The jwt override is a valid compose file, really switches both services
// to jwt mode, and the binaries start with exactly its environment.
func TestComposeJWTOverride(t *testing.T) {
	abs, _ := filepath.Abs(root)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(abs, "docker-compose.yml"), filepath.Join(abs, "docker-compose.jwt.yml")},
		cli.WithWorkingDirectory(abs), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.jwt.yml: %v", err)
	}
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
