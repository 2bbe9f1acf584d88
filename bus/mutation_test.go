package bus_test

// Tests aimed at mutants that survived `make mutation` (docs/mutation.md),
// against a real redis-server.

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/service/logging/logtest"
	"github.com/oshirase/oshirase/wire"
)

// The bus logs to the configured logger: a Close that cannot remove the
// instance's counts (Redis gone) says so there; one that can does not.
func TestBusLogsToConfiguredLogger(t *testing.T) {
	ch, err := wire.PersonChannel("acme", "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, redisDown := range []bool{false, true} {
		srv := redistest.Start(t)
		rdb := srv.Client()
		rec := &logtest.Recorder{}
		b, err := bus.NewRedis(bus.Config{
			Client: rdb, Handler: func(wire.Channel, []byte) {},
			CountTTL: 3 * time.Second, HealthInterval: 200 * time.Millisecond,
			Logger: slog.New(rec),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := b.Subscribe(ctx, []wire.Channel{ch}); err != nil {
			t.Fatal(err)
		}
		cancel()
		if redisDown {
			srv.Stop()
		}
		start := time.Now()
		_ = b.Close()
		_ = rdb.Close()
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("Close took %v", took)
		}
		const warning = "could not remove counts at shutdown"
		if got := rec.Count(warning) > 0; got != redisDown {
			t.Fatalf("Redis down %v: logged %q = %v; the log:\n%s", redisDown, warning, got, rec)
		}
	}
}
