package envconf

import (
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/service/ratelimit"
)

// Common is the configuration every oshirase service reads. The README's
// table lists the same variables; keep them in step.
type Common struct {
	Port  int            // PORT
	Redis *redis.Options // REDIS_URL, default localhost:6379
	// A Redis Cluster or a Sentinel-managed master instead of one server
	// (at most one of them): REDIS_URL then gives only the credentials,
	// TLS and (Sentinel) database. See RedisClient.
	RedisCluster  []string      // REDIS_CLUSTER_ADDRS: seed nodes, host:port
	RedisSentinel RedisSentinel // REDIS_SENTINEL_*
	// RedisProbeInterval is how often sub proves that each Pub/Sub
	// connection delivers (bus.Config.ProbeInterval).
	RedisProbeInterval time.Duration // REDIS_PROBE_INTERVAL, default 5s
	AllowedOrigins     []string      // ALLOWED_ORIGINS, default *
	ShutdownTimeout    time.Duration // SHUTDOWN_TIMEOUT, default 10s
	Playground         bool          // PLAYGROUND, default true
	Introspection      bool          // INTROSPECTION, default true
	LogLevel           string        // LOG_LEVEL, default info
	LogFormat          string        // LOG_FORMAT, default text
	// TrustedProxies (TRUSTED_PROXIES, default none): the peers whose
	// X-Forwarded-For names the client, for the limits kept per client
	// address.
	TrustedProxies ratelimit.Proxies

	AuthMode AuthMode    // AUTH_MODE, default none
	JWT      auth.Config // JWT_*, in jwt mode
	HasJWT   bool        // a JWT key source is configured

	// Document limits (gqlserve.LimitsConfig), on both services.
	MaxQueryDepth      int // MAX_QUERY_DEPTH, default 16 (gqlserve.MaxQueryDepth)
	MaxQueryComplexity int // MAX_QUERY_COMPLEXITY, default 2000 (gqlserve.MaxQueryComplexity)

	// History: pub records every notice in its channel's history; sub reads
	// it back. Both read the same two variables; 0 in either turns history
	// off (then both are 0 here).
	HistorySize int           // HISTORY_SIZE, default 100 notices per channel
	HistoryTTL  time.Duration // HISTORY_TTL, default 24h
}

// Common reads the shared variables; defaultPort is the service's own.
// jwtOptional says a jwt-mode service may go without a JWT key source (pub,
// with API keys alone). In jwt mode ALLOWED_ORIGINS must list origins: "*"
// with credentials would let any web page act as a signed-in caller.
func (e *Env) Common(defaultPort int, jwtOptional bool) Common {
	c := Common{
		Port:            e.Port("PORT", defaultPort),
		AllowedOrigins:  e.List("ALLOWED_ORIGINS", []string{"*"}),
		ShutdownTimeout: e.Duration("SHUTDOWN_TIMEOUT", 10*time.Second, 0, 10*time.Minute),
		Playground:      e.Bool("PLAYGROUND", true),
		Introspection:   e.Bool("INTROSPECTION", true),
		LogLevel:        e.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:       e.OneOf("LOG_FORMAT", "text", "text", "json"),
	}
	if list := e.List("TRUSTED_PROXIES", nil); len(list) > 0 {
		p, err := ratelimit.ParseProxies(list)
		if err != nil {
			e.Fail("TRUSTED_PROXIES", "%v", err)
		}
		c.TrustedProxies = p
	}
	// Deeper than the selection bound no document can be; GraphiQL's
	// introspection query needs 15.
	c.MaxQueryDepth = e.Int("MAX_QUERY_DEPTH", gqlserve.MaxQueryDepth, 1, gqlserve.MaxQuerySelections)
	c.MaxQueryComplexity = e.Int("MAX_QUERY_COMPLEXITY", gqlserve.MaxQueryComplexity, 1, 1_000_000_000)
	c.HistorySize = e.Int("HISTORY_SIZE", 100, 0, 100_000)
	c.HistoryTTL = e.Duration("HISTORY_TTL", 24*time.Hour, 0, 365*24*time.Hour)
	if c.HistoryTTL > 0 && c.HistoryTTL < time.Second {
		e.Fail("HISTORY_TTL", "must be 0 (history off) or at least 1s (got %s)", c.HistoryTTL)
	}
	if c.HistorySize == 0 || c.HistoryTTL == 0 {
		c.HistorySize, c.HistoryTTL = 0, 0
	}
	c.AuthMode, c.JWT, c.HasJWT = e.LoadAuth(jwtOptional)
	if c.AuthMode == AuthJWT && slices.Contains(c.AllowedOrigins, "*") {
		e.Fail("ALLOWED_ORIGINS", "must list your frontends' origins in AUTH_MODE=jwt (* with credentials would let any web page act as a signed-in caller)")
	}
	opt, err := RedisOptions(e.String("REDIS_URL", "localhost:6379"))
	if err != nil {
		e.Fail("REDIS_URL", "%v", err)
	}
	c.Redis = opt
	c.RedisCluster, c.RedisSentinel = e.redisTopology(opt)
	c.RedisProbeInterval = e.Duration("REDIS_PROBE_INTERVAL", 5*time.Second, 100*time.Millisecond, time.Hour)
	return c
}

// Limits returns the configuration of the GraphQL request limits, with
// maxBody the service's own body limit (pub: MAX_BODY_BYTES, sub:
// READ_LIMIT).
func (c Common) Limits(maxBody int, log *slog.Logger) gqlserve.LimitsConfig {
	return gqlserve.LimitsConfig{MaxBodyBytes: int64(maxBody), MaxDepth: c.MaxQueryDepth, MaxComplexity: c.MaxQueryComplexity, Logger: log}
}

// Rate reads a rate limit: name (events a second, 0 = no limit, the
// default) and burstName (events at once; default the rate rounded up, at
// least 1).
func (e *Env) Rate(name, burstName string) (perSecond float64, burst int) {
	perSecond = e.Float(name, 0, 0, 1e6)
	burst = e.Int(burstName, max(1, int(math.Ceil(perSecond))), 1, 1_000_000)
	return perSecond, burst
}
