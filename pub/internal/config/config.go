// Package config reads pub's configuration from the environment, once, at
// start. Every variable has a documented default; an invalid value stops
// the service with a message saying what to fix.
package config

import (
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/wire/auth"
	"github.com/oshirase/oshirase/wire/service"
)

// Config is pub's configuration. The README's table lists the same
// variables; keep them in step.
type Config struct {
	Port            int            // PORT, default 8080
	Redis           *redis.Options // REDIS_URL, default localhost:6379
	AllowedOrigins  []string       // ALLOWED_ORIGINS, default *
	MaxTextBytes    int            // MAX_TEXT_BYTES, default 4KiB
	PublishTimeout  time.Duration  // PUBLISH_TIMEOUT, default 3s
	ShutdownTimeout time.Duration  // SHUTDOWN_TIMEOUT, default 10s
	Playground      bool           // PLAYGROUND, default true
	Introspection   bool           // INTROSPECTION, default true
	LogLevel        string         // LOG_LEVEL, default info
	LogFormat       string         // LOG_FORMAT, default text

	AuthMode service.AuthMode // AUTH_MODE, default none
	JWT      auth.Config      // JWT_*, in jwt mode (optional when API keys are set)
	HasJWT   bool             // a JWT key source is configured
	APIKeys  auth.APIKeys     // PUBLISHER_API_KEYS, e.g. "key1:acme,key2:*"
}

// Load reads the configuration through lookup (nil: the process
// environment).
func Load(lookup func(string) (string, bool)) (Config, error) {
	e := service.NewEnv(lookup)
	c := Config{
		Port:            e.Port("PORT", 8080),
		AllowedOrigins:  e.List("ALLOWED_ORIGINS", []string{"*"}),
		MaxTextBytes:    e.Bytes("MAX_TEXT_BYTES", 4<<10, 1, 1<<20),
		PublishTimeout:  e.Duration("PUBLISH_TIMEOUT", 3*time.Second, 10*time.Millisecond, time.Minute),
		ShutdownTimeout: e.Duration("SHUTDOWN_TIMEOUT", 10*time.Second, 0, 10*time.Minute),
		Playground:      e.Bool("PLAYGROUND", true),
		Introspection:   e.Bool("INTROSPECTION", true),
		LogLevel:        e.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:       e.OneOf("LOG_FORMAT", "text", "text", "json"),
	}
	c.AuthMode, c.JWT, c.HasJWT = e.LoadAuth(true)
	if spec := e.String("PUBLISHER_API_KEYS", ""); spec != "" {
		keys, err := auth.ParseAPIKeys(spec)
		if err != nil {
			e.Fail("PUBLISHER_API_KEYS", "%v", err)
		}
		c.APIKeys = keys
	}
	if c.AuthMode == service.AuthJWT {
		if !c.HasJWT && c.APIKeys.Len() == 0 {
			e.Fail("AUTH_MODE=jwt", "set PUBLISHER_API_KEYS or one of JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_PUBLIC_KEY, JWT_JWKS_URL")
		}
		if slices.Contains(c.AllowedOrigins, "*") {
			e.Fail("ALLOWED_ORIGINS", "must list your frontends' origins in AUTH_MODE=jwt (* with credentials would let any web page publish as a signed-in caller)")
		}
	}
	opt, err := service.RedisOptions(e.String("REDIS_URL", "localhost:6379"))
	if err != nil {
		e.Fail("REDIS_URL", "%v", err)
	}
	c.Redis = opt
	return c, e.Err()
}
