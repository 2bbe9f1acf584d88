package envconf

import (
	"fmt"
	"net"
	"strings"
	"time"

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

// RedisSentinel says where the sentinels are and which master they watch.
type RedisSentinel struct {
	Addrs    []string // REDIS_SENTINEL_ADDRS: host:port of each sentinel
	Master   string   // REDIS_SENTINEL_MASTER: the master's name
	Password string   // REDIS_SENTINEL_PASSWORD: the sentinels' own (requirepass)
}

// redisTopology reads REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_*: at most
// one of the two, every address host:port.
func (e *Env) redisTopology(opt *redis.Options) ([]string, RedisSentinel) {
	cluster := e.List("REDIS_CLUSTER_ADDRS", nil)
	for _, a := range cluster {
		if h, p, err := net.SplitHostPort(a); err != nil || h == "" || p == "" {
			e.Fail("REDIS_CLUSTER_ADDRS", "%q is not host:port (a comma-separated list of seed nodes)", a)
		}
	}
	if len(cluster) > 0 && opt != nil && opt.DB != 0 {
		e.Fail("REDIS_CLUSTER_ADDRS", "a Redis Cluster has only database 0, REDIS_URL names %d", opt.DB)
	}
	s := RedisSentinel{
		Addrs:    e.List("REDIS_SENTINEL_ADDRS", nil),
		Master:   e.String("REDIS_SENTINEL_MASTER", ""),
		Password: e.String("REDIS_SENTINEL_PASSWORD", ""),
	}
	for _, a := range s.Addrs {
		if h, p, err := net.SplitHostPort(a); err != nil || h == "" || p == "" {
			e.Fail("REDIS_SENTINEL_ADDRS", "%q is not host:port (a comma-separated list of sentinels)", a)
		}
	}
	if len(s.Addrs) > 0 && s.Master == "" {
		e.Fail("REDIS_SENTINEL_MASTER", "is required with REDIS_SENTINEL_ADDRS: the name the sentinels monitor the master under")
	}
	if len(s.Addrs) == 0 && s.Master != "" {
		e.Fail("REDIS_SENTINEL_ADDRS", "is required with REDIS_SENTINEL_MASTER")
	}
	if len(cluster) > 0 && len(s.Addrs) > 0 {
		e.Fail("REDIS_CLUSTER_ADDRS", "and REDIS_SENTINEL_ADDRS are both set: use one")
	}
	return cluster, s
}

// RedisClient builds the client a service talks to Redis with: a
// ClusterClient when REDIS_CLUSTER_ADDRS is set, a failover client (it asks
// the sentinels for the master, and follows it) when REDIS_SENTINEL_ADDRS
// is, else a client of REDIS_URL's server. Username, password, TLS and
// timeouts come from REDIS_URL in every case (on a cluster for every node;
// with Sentinel for the master and replicas, the sentinels taking
// REDIS_SENTINEL_PASSWORD). poolSize bounds connections (per node on a
// cluster); 0 leaves go-redis's default. Every client honours its callers'
// deadlines (see RedisOptions).
func (c Common) RedisClient(name string, poolSize int) redis.UniversalClient {
	o := *c.Redis
	o.ClientName = name
	if poolSize > 0 {
		o.PoolSize = poolSize
	}
	switch {
	case len(c.RedisCluster) > 0:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                 c.RedisCluster,
			ClientName:            o.ClientName,
			Protocol:              o.Protocol,
			Username:              o.Username,
			Password:              o.Password,
			TLSConfig:             o.TLSConfig,
			DialTimeout:           o.DialTimeout,
			ReadTimeout:           o.ReadTimeout,
			WriteTimeout:          o.WriteTimeout,
			PoolSize:              o.PoolSize,
			ContextTimeoutEnabled: true,
			// go-redis reads the slot map again only on MOVED or after this
			// long (default 60s): a dead master's slots would fail every
			// publish that long after its replica took over.
			ClusterStateReloadInterval: time.Second,
		})
	case len(c.RedisSentinel.Addrs) > 0:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            c.RedisSentinel.Master,
			SentinelAddrs:         c.RedisSentinel.Addrs,
			SentinelPassword:      c.RedisSentinel.Password,
			ClientName:            o.ClientName,
			Protocol:              o.Protocol,
			Username:              o.Username,
			Password:              o.Password,
			DB:                    o.DB,
			TLSConfig:             o.TLSConfig,
			DialTimeout:           o.DialTimeout,
			ReadTimeout:           o.ReadTimeout,
			WriteTimeout:          o.WriteTimeout,
			PoolSize:              o.PoolSize,
			ContextTimeoutEnabled: true,
		})
	default:
		return redis.NewClient(&o)
	}
}

// RedisTarget describes where RedisClient connects, for logs.
func (c Common) RedisTarget() string {
	switch {
	case len(c.RedisCluster) > 0:
		return "cluster " + strings.Join(c.RedisCluster, ",")
	case len(c.RedisSentinel.Addrs) > 0:
		return "sentinel master " + c.RedisSentinel.Master + " via " + strings.Join(c.RedisSentinel.Addrs, ",")
	default:
		return c.Redis.Addr
	}
}
