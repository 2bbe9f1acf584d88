package envconf_test

import (
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/service/envconf"
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
