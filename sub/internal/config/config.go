// Package config reads sub's configuration from the environment, once, at
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

// Config is sub's configuration. The README's table lists the same
// variables; keep them in step.
type Config struct {
	Port            int            // PORT, default 8081
	Redis           *redis.Options // REDIS_URL, default localhost:6379
	AllowedOrigins  []string       // ALLOWED_ORIGINS, default *
	QueueSize       int            // QUEUE_SIZE, default 128
	WriteTimeout    time.Duration  // WRITE_TIMEOUT, default 5s
	ReadLimit       int            // READ_LIMIT, default 64KiB
	KeepAlive       time.Duration  // KEEPALIVE_INTERVAL, default 10s
	InitTimeout     time.Duration  // INIT_TIMEOUT, default 3s
	SubscribeWait   time.Duration  // SUBSCRIBE_TIMEOUT, default 5s
	CountTTL        time.Duration  // COUNT_TTL, default 30s
	ShutdownTimeout time.Duration  // SHUTDOWN_TIMEOUT, default 10s
	Playground      bool           // PLAYGROUND, default true
	Introspection   bool           // INTROSPECTION, default true
	PprofAddr       string         // PPROF_ADDR, default off
	LogLevel        string         // LOG_LEVEL, default info
	LogFormat       string         // LOG_FORMAT, default text

	AuthMode   service.AuthMode // AUTH_MODE, default none
	JWT        auth.Config      // JWT_*, required in jwt mode
	AuthCookie string           // AUTH_COOKIE, default none: cookie holding the token
}

// Load reads the configuration through lookup (nil: the process
// environment).
func Load(lookup func(string) (string, bool)) (Config, error) {
	e := service.NewEnv(lookup)
	c := Config{
		Port:            e.Port("PORT", 8081),
		AllowedOrigins:  e.List("ALLOWED_ORIGINS", []string{"*"}),
		QueueSize:       e.Int("QUEUE_SIZE", 128, 1, 1<<20),
		WriteTimeout:    e.Duration("WRITE_TIMEOUT", 5*time.Second, 10*time.Millisecond, time.Minute),
		ReadLimit:       e.Bytes("READ_LIMIT", 64<<10, 1<<10, 64<<20),
		KeepAlive:       e.Duration("KEEPALIVE_INTERVAL", 10*time.Second, 100*time.Millisecond, 10*time.Minute),
		InitTimeout:     e.Duration("INIT_TIMEOUT", 3*time.Second, 100*time.Millisecond, time.Minute),
		SubscribeWait:   e.Duration("SUBSCRIBE_TIMEOUT", 5*time.Second, 100*time.Millisecond, time.Minute),
		CountTTL:        e.Duration("COUNT_TTL", 30*time.Second, 3*time.Second, time.Hour),
		ShutdownTimeout: e.Duration("SHUTDOWN_TIMEOUT", 10*time.Second, 0, 10*time.Minute),
		Playground:      e.Bool("PLAYGROUND", true),
		Introspection:   e.Bool("INTROSPECTION", true),
		PprofAddr:       e.String("PPROF_ADDR", ""),
		LogLevel:        e.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:       e.OneOf("LOG_FORMAT", "text", "text", "json"),
	}
	c.AuthMode, c.JWT, _ = e.LoadAuth(false)
	c.AuthCookie = e.String("AUTH_COOKIE", "")
	if c.AuthMode == service.AuthJWT && slices.Contains(c.AllowedOrigins, "*") {
		e.Fail("ALLOWED_ORIGINS", "must list your frontends' origins in AUTH_MODE=jwt (* with credentials would let any web page act as a signed-in user)")
	}
	opt, err := service.RedisOptions(e.String("REDIS_URL", "localhost:6379"))
	if err != nil {
		e.Fail("REDIS_URL", "%v", err)
	}
	c.Redis = opt
	return c, e.Err()
}
