// Package config reads pub's configuration from the environment, once, at
// start. Every variable has a documented default; an invalid value stops
// the service with a message saying what to fix.
package config

import (
	"time"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/envconf"
)

// Config is pub's configuration: the variables every service reads (PORT
// defaults to 8080 here) and pub's own. The README's table lists the same
// variables; keep them in step.
type Config struct {
	envconf.Common
	MaxTextBytes   int           // MAX_TEXT_BYTES, default 4KiB
	MaxBodyBytes   int           // MAX_BODY_BYTES, default 1MiB (a batch of 1,000 notices)
	MaxBatch       int           // MAX_BATCH, default 1000
	IdempotencyTTL time.Duration // IDEMPOTENCY_TTL, default 24h
	PublishTimeout time.Duration // PUBLISH_TIMEOUT, default 3s
	APIKeys        auth.APIKeys  // PUBLISHER_API_KEYS, e.g. "key1:acme,key2:*"
	PublishRate    float64       // PUBLISH_RATE, default 0 (none): publishes a second per credential
	PublishBurst   int           // PUBLISH_BURST, default PUBLISH_RATE rounded up
	PprofAddr      string        // PPROF_ADDR, default off
}

// Load reads the configuration through lookup (nil: the process
// environment).
func Load(lookup func(string) (string, bool)) (Config, error) {
	e := envconf.NewEnv(lookup)
	c := Config{
		Common:         e.Common(8080, true),
		MaxTextBytes:   e.Bytes("MAX_TEXT_BYTES", 4<<10, 1, 1<<20),
		PublishTimeout: e.Duration("PUBLISH_TIMEOUT", 3*time.Second, 10*time.Millisecond, time.Minute),
		MaxBodyBytes:   e.Bytes("MAX_BODY_BYTES", 1<<20, 1<<10, 64<<20),
		MaxBatch:       e.Int("MAX_BATCH", 1000, 1, 100_000),
		IdempotencyTTL: e.Duration("IDEMPOTENCY_TTL", 24*time.Hour, time.Second, 30*24*time.Hour),
		PprofAddr:      e.String("PPROF_ADDR", ""),
	}
	c.PublishRate, c.PublishBurst = e.Rate("PUBLISH_RATE", "PUBLISH_BURST")
	if c.MaxBodyBytes < c.MaxTextBytes+1<<10 {
		e.Fail("MAX_BODY_BYTES", "must leave room for a notice of MAX_TEXT_BYTES (%d) and the rest of the request: at least %d", c.MaxTextBytes, c.MaxTextBytes+1<<10)
	}
	if spec := e.String("PUBLISHER_API_KEYS", ""); spec != "" {
		keys, err := auth.ParseAPIKeys(spec)
		if err != nil {
			e.Fail("PUBLISHER_API_KEYS", "%v", err)
		}
		c.APIKeys = keys
	}
	if c.AuthMode == envconf.AuthJWT && !c.HasJWT && c.APIKeys.Len() == 0 {
		e.Fail("AUTH_MODE=jwt", "set PUBLISHER_API_KEYS or one of JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_PUBLIC_KEY, JWT_JWKS_URL")
	}
	return c, e.Err()
}
