package bus_test

// Tests aimed at mutants that survived `make mutation` (docs/mutation.md),
// against a real redis-server.

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/wire"
)

// logRecorder is a slog handler that keeps every record's message.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

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
		rec := &logRecorder{}
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
		if got := rec.count(warning) > 0; got != redisDown {
			rec.mu.Lock()
			t.Fatalf("Redis down %v: logged %q = %v; the log: %q", redisDown, warning, got, rec.msgs)
		}
	}
}
