// Package config reads sub's configuration from the environment, once, at
// start. Every variable has a documented default; an invalid value stops
// the service with a message saying what to fix.
package config

import (
	"time"

	"github.com/oshirase/oshirase/service/envconf"
)

// Config is sub's configuration: the variables every service reads (PORT
// defaults to 8081 here) and sub's own. The README's table lists the same
// variables; keep them in step.
type Config struct {
	envconf.Common
	QueueSize     int           // QUEUE_SIZE, default 128
	WriteQueue    int           // WRITE_QUEUE_BYTES, default 1MiB
	WriteTimeout  time.Duration // WRITE_TIMEOUT, default 5s
	ReadLimit     int           // READ_LIMIT, default 64KiB
	KeepAlive     time.Duration // KEEPALIVE_INTERVAL, default 10s
	MissingPongOk bool          // MISSING_PONG_OK, default false
	InitTimeout   time.Duration // INIT_TIMEOUT, default 3s
	SubscribeWait time.Duration // SUBSCRIBE_TIMEOUT, default 5s
	CountTTL      time.Duration // COUNT_TTL, default 30s
	PprofAddr     string        // PPROF_ADDR, default off
	AuthCookie    string        // AUTH_COOKIE, default none: cookie holding the token
}

// Load reads the configuration through lookup (nil: the process
// environment).
func Load(lookup func(string) (string, bool)) (Config, error) {
	e := envconf.NewEnv(lookup)
	c := Config{
		Common:        e.Common(8081, false),
		QueueSize:     e.Int("QUEUE_SIZE", 128, 1, 1<<20),
		WriteQueue:    e.Bytes("WRITE_QUEUE_BYTES", 1<<20, 4<<10, 1<<30),
		WriteTimeout:  e.Duration("WRITE_TIMEOUT", 5*time.Second, 10*time.Millisecond, time.Minute),
		ReadLimit:     e.Bytes("READ_LIMIT", 64<<10, 1<<10, 64<<20),
		KeepAlive:     e.Duration("KEEPALIVE_INTERVAL", 10*time.Second, 100*time.Millisecond, 10*time.Minute),
		MissingPongOk: e.Bool("MISSING_PONG_OK", false),
		InitTimeout:   e.Duration("INIT_TIMEOUT", 3*time.Second, 100*time.Millisecond, time.Minute),
		SubscribeWait: e.Duration("SUBSCRIBE_TIMEOUT", 5*time.Second, 100*time.Millisecond, time.Minute),
		CountTTL:      e.Duration("COUNT_TTL", 30*time.Second, 3*time.Second, time.Hour),
		PprofAddr:     e.String("PPROF_ADDR", ""),
		AuthCookie:    e.String("AUTH_COOKIE", ""),
	}
	return c, e.Err()
}
