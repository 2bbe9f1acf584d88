// Package config reads sub's configuration from the environment, once, at
// start. Every variable has a documented default; an invalid value stops
// the service with a message saying what to fix.
package config

import (
	"os"
	"strings"
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
	DrainDelay    time.Duration // DRAIN_DELAY, default 5s: /readyz 503 before any socket closes
	DrainWindow   time.Duration // DRAIN_WINDOW, default 10s: the closes spread over it

	// Limits (0: none).
	MaxConnections   int     // MAX_CONNECTIONS, default 0: streams on this instance
	MaxPerUser       int     // MAX_CONNECTIONS_PER_USER, default 0 (jwt mode only)
	MaxSubscriptions int     // MAX_SUBSCRIPTIONS_PER_CONNECTION, default 100
	ConnectRate      float64 // CONNECT_RATE, default 0: new streams a second per client address
	ConnectBurst     int     // CONNECT_BURST, default CONNECT_RATE rounded up
}

// Drain defaults. SHUTDOWN_TIMEOUT on sub bounds the whole shutdown, from
// the signal to the exit, so unset it is the drain plus the time the
// services have always given requests in flight.
const (
	defaultDrainDelay  = 5 * time.Second
	defaultDrainWindow = 10 * time.Second
	inFlightGrace      = 10 * time.Second
)

// Load reads the configuration through lookup (nil: the process
// environment).
func Load(lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
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
		DrainDelay:    e.Duration("DRAIN_DELAY", defaultDrainDelay, 0, 10*time.Minute),
		DrainWindow:   e.Duration("DRAIN_WINDOW", defaultDrainWindow, 0, 10*time.Minute),

		MaxConnections:   e.Int("MAX_CONNECTIONS", 0, 0, 10_000_000),
		MaxPerUser:       e.Int("MAX_CONNECTIONS_PER_USER", 0, 0, 1_000_000),
		MaxSubscriptions: e.Int("MAX_SUBSCRIPTIONS_PER_CONNECTION", 100, 0, 1_000_000),
	}
	c.ConnectRate, c.ConnectBurst = e.Rate("CONNECT_RATE", "CONNECT_BURST")
	if c.MaxPerUser > 0 && c.AuthMode != envconf.AuthJWT {
		e.Fail("MAX_CONNECTIONS_PER_USER", "needs AUTH_MODE=jwt: without tokens sub does not know who a user is")
	}
	drain := c.DrainDelay + c.DrainWindow
	if v, ok := lookup("SHUTDOWN_TIMEOUT"); !ok || strings.TrimSpace(v) == "" {
		c.ShutdownTimeout = drain + inFlightGrace
	} else if c.ShutdownTimeout < drain {
		e.Fail("SHUTDOWN_TIMEOUT", "%s is shorter than DRAIN_DELAY + DRAIN_WINDOW (%s + %s): sub would be stopped before its drain ends; raise it, or shorten DRAIN_DELAY / DRAIN_WINDOW (0s each closes every connection at once)",
			c.ShutdownTimeout, c.DrainDelay, c.DrainWindow)
	}
	return c, e.Err()
}
