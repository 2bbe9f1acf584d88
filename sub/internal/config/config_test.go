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
		c.CountTTL != 30*time.Second || c.ShutdownTimeout != 10*time.Second {
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
	c, err := config.Load(lookup("SHUTDOWN_TIMEOUT", "0s", "PORT", "0"))
	if err != nil || c.ShutdownTimeout != 0 || c.Port != 0 {
		t.Fatalf("SHUTDOWN_TIMEOUT=0s PORT=0: %+v, %v; want both kept as 0", c.Common, err)
	}
}
