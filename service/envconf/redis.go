package envconf

import (
	"fmt"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisOptions parses REDIS_URL: a bare "host:port" (as the original compose
// file used), or a redis://, rediss:// or unix:// URL.
//
// Every client built from the result honours its callers' context
// deadlines (ContextTimeoutEnabled): without it
// go-redis v9 bounds a command only by its own read and write timeouts
// (5s each, and a timed-out read may be retried), so PUBLISH_TIMEOUT,
// SUBSCRIBE_TIMEOUT and the readiness checks would not hold against a Redis
// that accepts connections and never answers. A command cut by its deadline
// closes its connection, so a late reply can never be read as the answer
// to the next command.
func RedisOptions(raw string) (*redis.Options, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, fmt.Errorf("REDIS_URL is empty: use host:port or redis://host:port/0")
	}
	var opt *redis.Options
	if strings.Contains(raw, "://") {
		var err error
		if opt, err = redis.ParseURL(raw); err != nil {
			return nil, fmt.Errorf("REDIS_URL %q: %w (use host:port or redis://[user:password@]host:port/db)", raw, err)
		}
	} else {
		host, port, err := net.SplitHostPort(raw)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("REDIS_URL %q: want host:port or redis://host:port/db", raw)
		}
		opt = &redis.Options{Addr: raw}
	}
	opt.ContextTimeoutEnabled = true
	return opt, nil
}
