package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/sub/internal/config"
)

func lookup(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Unset variables take the defaults the README documents.
func TestDefaults(t *testing.T) {
	c, err := config.Load(lookup())
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8081 || c.QueueSize != 128 || c.WriteTimeout != 5*time.Second || c.ReadLimit != 64<<10 ||
		c.KeepAlive != 10*time.Second || c.InitTimeout != 3*time.Second || c.SubscribeWait != 5*time.Second ||
		c.CountTTL != 30*time.Second || c.DrainDelay != 5*time.Second || c.DrainWindow != 10*time.Second ||
		c.ShutdownTimeout != 25*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}

// A zero the operator wrote is never silently turned into the default:
// where zero means nothing it is refused, naming the variable; where it
// means something it is kept.
func TestZeroIsRefusedOrMeant(t *testing.T) {
	for _, name := range []string{"QUEUE_SIZE", "WRITE_TIMEOUT", "READ_LIMIT", "KEEPALIVE_INTERVAL", "INIT_TIMEOUT", "SUBSCRIBE_TIMEOUT", "COUNT_TTL"} {
		for _, zero := range []string{"0", "0s", "0KiB"} {
			if _, err := config.Load(lookup(name, zero)); err == nil || !strings.Contains(err.Error(), name+":") {
				t.Errorf("%s=%s: err %v, want it refused, naming %s", name, zero, err, name)
			}
		}
	}
	c, err := config.Load(lookup("SHUTDOWN_TIMEOUT", "0s", "PORT", "0", "DRAIN_DELAY", "0s", "DRAIN_WINDOW", "0s"))
	if err != nil || c.ShutdownTimeout != 0 || c.Port != 0 || c.DrainDelay != 0 || c.DrainWindow != 0 {
		t.Fatalf("SHUTDOWN_TIMEOUT=0s PORT=0 DRAIN_DELAY=0s DRAIN_WINDOW=0s: %+v, %v; want all kept as 0", c, err)
	}
}

// SHUTDOWN_TIMEOUT bounds sub's whole shutdown: unset, it is the drain
// plus 10s for what is in flight; set shorter than the drain, sub refuses
// to start, naming the variables, rather than be cut off mid-drain.
func TestShutdownTimeoutHoldsTheDrain(t *testing.T) {
	c, err := config.Load(lookup("DRAIN_DELAY", "1s", "DRAIN_WINDOW", "30s"))
	if err != nil || c.ShutdownTimeout != 41*time.Second {
		t.Fatalf("DRAIN_DELAY=1s DRAIN_WINDOW=30s: SHUTDOWN_TIMEOUT %s, %v; want 41s", c.ShutdownTimeout, err)
	}
	c, err = config.Load(lookup("DRAIN_DELAY", "0s", "DRAIN_WINDOW", "0s"))
	if err != nil || c.ShutdownTimeout != 10*time.Second {
		t.Fatalf("no drain: SHUTDOWN_TIMEOUT %s, %v; want 10s", c.ShutdownTimeout, err)
	}
	c, err = config.Load(lookup("SHUTDOWN_TIMEOUT", "15s"))
	if err != nil || c.ShutdownTimeout != 15*time.Second {
		t.Fatalf("SHUTDOWN_TIMEOUT=15s with the default drain (15s): %s, %v; want it accepted", c.ShutdownTimeout, err)
	}
	for _, kv := range [][]string{
		{"SHUTDOWN_TIMEOUT", "10s"},
		{"SHUTDOWN_TIMEOUT", "0s"},
		{"SHUTDOWN_TIMEOUT", "5s", "DRAIN_DELAY", "2s", "DRAIN_WINDOW", "4s"},
	} {
		_, err := config.Load(lookup(kv...))
		if err == nil || !strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT:") || !strings.Contains(err.Error(), "DRAIN_WINDOW") {
			t.Errorf("%v: err %v, want it refused naming SHUTDOWN_TIMEOUT and the drain", kv, err)
		}
	}
	for _, name := range []string{"DRAIN_DELAY", "DRAIN_WINDOW"} {
		if _, err := config.Load(lookup(name, "-1s")); err == nil || !strings.Contains(err.Error(), name+":") {
			t.Errorf("%s=-1s: err %v, want it refused", name, err)
		}
	}
}

// The limits: off by default (but 100 subscriptions per connection), 0
// means no limit, and nonsense is refused naming the variable.
func TestLimits(t *testing.T) {
	c, err := config.Load(lookup())
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxConnections != 0 || c.MaxPerUser != 0 || c.MaxSubscriptions != 100 || c.ConnectRate != 0 || c.ConnectBurst != 1 || c.TrustedProxies != nil {
		t.Fatalf("limit defaults: %+v", c)
	}
	c, err = config.Load(lookup("MAX_CONNECTIONS", "5000", "MAX_SUBSCRIPTIONS_PER_CONNECTION", "0", "CONNECT_RATE", "2.5",
		"TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1", "AUTH_MODE", "jwt", "JWT_SECRET", "0123456789abcdef0123456789abcdef",
		"ALLOWED_ORIGINS", "http://x", "MAX_CONNECTIONS_PER_USER", "8"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxConnections != 5000 || c.MaxSubscriptions != 0 || c.ConnectRate != 2.5 || c.ConnectBurst != 3 || len(c.TrustedProxies) != 2 || c.MaxPerUser != 8 {
		t.Fatalf("limits: %+v", c)
	}
	for _, kv := range [][2]string{
		{"MAX_CONNECTIONS", "-1"}, {"MAX_SUBSCRIPTIONS_PER_CONNECTION", "many"}, {"CONNECT_RATE", "-2"},
		{"CONNECT_RATE", "NaN"}, {"CONNECT_BURST", "0"}, {"TRUSTED_PROXIES", "nginx"},
		{"MAX_CONNECTIONS_PER_USER", "3"}, // needs AUTH_MODE=jwt
	} {
		if _, err := config.Load(lookup(kv[0], kv[1])); err == nil || !strings.Contains(err.Error(), kv[0]+":") {
			t.Errorf("%s=%s: err %v, want it refused, naming %s", kv[0], kv[1], err, kv[0])
		}
	}
}
