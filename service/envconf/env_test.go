package envconf_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/service/envconf"
	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/service/httpserve"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnvDefaultsAndValues(t *testing.T) {
	e := envconf.NewEnv(env("PORT", "9000", "T", "250ms", "B", "4KiB", "L", " a, ,b ", "F", "true", "LEVEL", "WARN"))
	if got := e.Port("PORT", 1); got != 9000 {
		t.Errorf("Port = %d", got)
	}
	if got := e.Port("MISSING", 8081); got != 8081 {
		t.Errorf("default = %d", got)
	}
	if got := e.Duration("T", time.Second, 0, time.Minute); got != 250*time.Millisecond {
		t.Errorf("Duration = %s", got)
	}
	if got := e.Bytes("B", 1, 1, 1<<20); got != 4096 {
		t.Errorf("Bytes = %d", got)
	}
	if got := e.List("L", nil); strings.Join(got, "|") != "a|b" {
		t.Errorf("List = %q", got)
	}
	if !e.Bool("F", false) {
		t.Error("Bool")
	}
	if got := e.OneOf("LEVEL", "info", "debug", "info", "warn"); got != "warn" {
		t.Errorf("OneOf = %q", got)
	}
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestEnvReportsEveryProblem(t *testing.T) {
	e := envconf.NewEnv(env("PORT", "70000", "T", "5", "B", "lots", "F", "maybe", "LEVEL", "loud"))
	e.Port("PORT", 1)
	e.Duration("T", time.Second, 0, time.Minute)
	e.Bytes("B", 1, 1, 10)
	e.Bool("F", false)
	e.OneOf("LEVEL", "info", "debug", "info")
	err := e.Err()
	for _, name := range []string{"PORT", "T:", "B:", "F:", "LEVEL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestRedisOptions(t *testing.T) {
	for _, tc := range []struct {
		in, addr string
		db       int
		tls      bool
	}{
		{"redis:6379", "redis:6379", 0, false},
		{"127.0.0.1:7000", "127.0.0.1:7000", 0, false},
		{"redis://user:pw@host:6380/2", "host:6380", 2, false},
		{"rediss://host:6380", "host:6380", 0, true},
	} {
		opt, err := envconf.RedisOptions(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if opt.Addr != tc.addr || opt.DB != tc.db || (opt.TLSConfig != nil) != tc.tls {
			t.Errorf("%q: addr %q db %d tls %v", tc.in, opt.Addr, opt.DB, opt.TLSConfig != nil)
		}
		// Every documented timeout rests on commands honouring deadlines.
		if !opt.ContextTimeoutEnabled {
			t.Errorf("%q: ContextTimeoutEnabled is off", tc.in)
		}
	}
	for _, bad := range []string{"", "localhost", "redis//x", "http://x:1", ":6379"} {
		if _, err := envconf.RedisOptions(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOrigins(t *testing.T) {
	o := httpserve.NewOrigins([]string{"https://App.example.com/", "http://localhost:3000"})
	for origin, want := range map[string]bool{
		"":                                     true,
		"https://app.example.com":              true,
		"http://localhost:3000":                true,
		"https://evil.example":                 false,
		"https://app.example.com.evil.example": false,
	} {
		if got := o.Allowed(origin); got != want {
			t.Errorf("Allowed(%q) = %v", origin, got)
		}
	}
	if !httpserve.NewOrigins([]string{"*"}).Allowed("https://anything") {
		t.Error("* does not allow everything")
	}
}

func TestCommonRefusesAnyOriginInJWTMode(t *testing.T) {
	e := envconf.NewEnv(env("AUTH_MODE", "jwt", "JWT_SECRET", "a-secret-long-enough-for-hs256-use"))
	c := e.Common(8081, false)
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "ALLOWED_ORIGINS") {
		t.Fatalf("jwt mode with ALLOWED_ORIGINS=*: %v", err)
	}
	if c.Port != 8081 || c.AuthMode != envconf.AuthJWT || !c.HasJWT {
		t.Fatalf("common %+v", c)
	}
	e = envconf.NewEnv(env("AUTH_MODE", "jwt", "ALLOWED_ORIGINS", "https://app.example"))
	e.Common(8080, true) // pub may rely on API keys alone
	if err := e.Err(); err != nil {
		t.Fatalf("jwt mode without a key source, optional: %v", err)
	}
}

func TestCommonHistory(t *testing.T) {
	for _, tc := range []struct {
		kv   []string
		size int
		ttl  time.Duration
		bad  string
	}{
		{nil, 100, 24 * time.Hour, ""},
		{[]string{"HISTORY_SIZE", "500", "HISTORY_TTL", "1h"}, 500, time.Hour, ""},
		{[]string{"HISTORY_SIZE", "0"}, 0, 0, ""},
		{[]string{"HISTORY_TTL", "0"}, 0, 0, ""},
		{[]string{"HISTORY_SIZE", "-1"}, 0, 0, "HISTORY_SIZE"},
		{[]string{"HISTORY_SIZE", "lots"}, 0, 0, "HISTORY_SIZE"},
		{[]string{"HISTORY_TTL", "10ms"}, 0, 0, "HISTORY_TTL"},
		{[]string{"HISTORY_TTL", "forever"}, 0, 0, "HISTORY_TTL"},
	} {
		e := envconf.NewEnv(env(tc.kv...))
		c := e.Common(8080, true)
		err := e.Err()
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%v: error %v, want one naming %s", tc.kv, err, tc.bad)
			}
			continue
		}
		if err != nil || c.HistorySize != tc.size || c.HistoryTTL != tc.ttl {
			t.Errorf("%v: size %d ttl %s err %v; want %d %s", tc.kv, c.HistorySize, c.HistoryTTL, err, tc.size, tc.ttl)
		}
	}
}

// REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_* choose the client's kind; the
// credentials and TLS still come from REDIS_URL; contradictions and
// malformed addresses fail naming the variable.
func TestRedisTopology(t *testing.T) {
	e := envconf.NewEnv(env("REDIS_URL", "rediss://u:pw@ignored:6379", "REDIS_CLUSTER_ADDRS", "a:7000, b:7001"))
	c := e.Common(8080, false)
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	cc, ok := c.RedisClient("test", 3).(*redis.ClusterClient)
	if !ok {
		t.Fatalf("REDIS_CLUSTER_ADDRS: client %T", c.RedisClient("test", 3))
	}
	o := cc.Options()
	if strings.Join(o.Addrs, ",") != "a:7000,b:7001" || o.Username != "u" || o.Password != "pw" || o.TLSConfig == nil || !o.ContextTimeoutEnabled || o.PoolSize != 3 {
		t.Fatalf("cluster options %+v", o)
	}
	cc.Close()

	e = envconf.NewEnv(env("REDIS_URL", "redis://:pw@ignored:6379/2", "REDIS_SENTINEL_ADDRS", "s1:26379,s2:26379", "REDIS_SENTINEL_MASTER", "mymaster"))
	c = e.Common(8080, false)
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	if c.RedisSentinel.Master != "mymaster" || len(c.RedisSentinel.Addrs) != 2 {
		t.Fatalf("sentinel %+v", c.RedisSentinel)
	}
	fc, ok := c.RedisClient("test", 0).(*redis.Client)
	if !ok || !fc.Options().ContextTimeoutEnabled || fc.Options().DB != 2 {
		t.Fatalf("sentinel client %T", c.RedisClient("test", 0))
	}
	fc.Close()

	for _, tc := range []struct {
		kv   []string
		name string
	}{
		{[]string{"REDIS_CLUSTER_ADDRS", "a:1,nope"}, "REDIS_CLUSTER_ADDRS"},
		{[]string{"REDIS_CLUSTER_ADDRS", "a:1", "REDIS_URL", "redis://h:1/3"}, "REDIS_CLUSTER_ADDRS"},
		{[]string{"REDIS_SENTINEL_ADDRS", "s:1"}, "REDIS_SENTINEL_MASTER"},
		{[]string{"REDIS_SENTINEL_MASTER", "m"}, "REDIS_SENTINEL_ADDRS"},
		{[]string{"REDIS_SENTINEL_ADDRS", "s", "REDIS_SENTINEL_MASTER", "m"}, "REDIS_SENTINEL_ADDRS"},
		{[]string{"REDIS_CLUSTER_ADDRS", "a:1", "REDIS_SENTINEL_ADDRS", "s:1", "REDIS_SENTINEL_MASTER", "m"}, "REDIS_CLUSTER_ADDRS"},
	} {
		e := envconf.NewEnv(env(tc.kv...))
		e.Common(8080, false)
		if err := e.Err(); err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%v: %v, want an error naming %s", tc.kv, err, tc.name)
		}
	}
}

// MAX_QUERY_DEPTH and MAX_QUERY_COMPLEXITY default to gqlserve's bounds
// and reach the limits' configuration; values out of range fail naming
// the variable.
func TestCommonDocumentLimits(t *testing.T) {
	for _, tc := range []struct {
		kv                []string
		depth, complexity int
		bad               []string
	}{
		{nil, gqlserve.MaxQueryDepth, gqlserve.MaxQueryComplexity, nil},
		{[]string{"MAX_QUERY_DEPTH", "20", "MAX_QUERY_COMPLEXITY", "150"}, 20, 150, nil},
		{[]string{"MAX_QUERY_DEPTH", "0", "MAX_QUERY_COMPLEXITY", "-1"}, 0, 0, []string{"MAX_QUERY_DEPTH", "MAX_QUERY_COMPLEXITY"}},
		{[]string{"MAX_QUERY_DEPTH", "601"}, 0, 0, []string{"MAX_QUERY_DEPTH", "from 1 to 600"}},
		{[]string{"MAX_QUERY_COMPLEXITY", "lots"}, 0, 0, []string{"MAX_QUERY_COMPLEXITY"}},
	} {
		e := envconf.NewEnv(env(tc.kv...))
		c := e.Common(8080, true)
		err := e.Err()
		if tc.bad != nil {
			for _, name := range tc.bad {
				if err == nil || !strings.Contains(err.Error(), name) {
					t.Errorf("%v: error %v, want one naming %s", tc.kv, err, name)
				}
			}
			continue
		}
		l := c.Limits(4096, nil)
		if err != nil || l.MaxDepth != tc.depth || l.MaxComplexity != tc.complexity || l.MaxBodyBytes != 4096 {
			t.Errorf("%v: limits %+v err %v; want depth %d complexity %d", tc.kv, l, err, tc.depth, tc.complexity)
		}
	}
}
