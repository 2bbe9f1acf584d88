package envconf

import (
	"fmt"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisOptions parses REDIS_URL: a bare "host:port" (as the original compose
// file used), or a redis://, rediss:// or unix:// URL.
func RedisOptions(raw string) (*redis.Options, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, fmt.Errorf("REDIS_URL is empty: use host:port or redis://host:port/0")
	}
	if strings.Contains(raw, "://") {
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL %q: %w (use host:port or redis://[user:password@]host:port/db)", raw, err)
		}
		return opt, nil
	}
	host, port, err := net.SplitHostPort(raw)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("REDIS_URL %q: want host:port or redis://host:port/db", raw)
	}
	return &redis.Options{Addr: raw}, nil
}
