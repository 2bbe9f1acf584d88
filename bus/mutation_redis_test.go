package bus_test

import (
	"testing"
	"time"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
)

// TestFrozenRedisNoticedByThePings: with the probe an hour away, only the
// PINGs of a silent Pub/Sub connection notice a Redis that takes bytes and
// never answers: within two HealthIntervals, as configured (200ms: checked
// within 2s) and by default (3s: checked within 15s, never with a zero
// interval) (redis.go's HealthInterval default).
func TestFrozenRedisNoticedByThePings(t *testing.T) {
	onlyOn(t, "single")
	d := single{redistest.Start(t)}
	quick := instance(t, d, newInbox(), func(c *bus.Config) { c.ProbeInterval = time.Hour })
	byDefault := instance(t, d, newInbox(), func(c *bus.Config) { c.ProbeInterval, c.HealthInterval = time.Hour, 0 })
	waitFor(t, "healthy", func() bool { return quick.Healthy() && byDefault.Healthy() })

	d.freeze()
	t.Cleanup(d.thaw) // before the buses close
	waitUpTo(t, 2*time.Second, "down with HealthInterval 200ms", func() bool { return !quick.Healthy() })
	waitUpTo(t, 15*time.Second, "down with the default HealthInterval", func() bool { return !byDefault.Healthy() })
}
