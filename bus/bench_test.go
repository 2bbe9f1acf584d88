package bus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/wire"
)

// BenchmarkPublish measures publishes with history off and on, from 8
// goroutines over 100 channels (full histories after the first
// 10,000: every publish then trims), and reports the CPU time Redis spent per
// publish (redis-µs/op), the figure that bounds a Redis's publish rate:
//
//	cd bus && go test -run '^$' -bench Publish -benchtime 20000x .
func BenchmarkPublish(b *testing.B) {
	for _, tc := range []struct {
		name string
		size int
	}{{"history=off", 0}, {"history=100", 100}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := redistest.Start(b)
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 16, ContextTimeoutEnabled: true})
			defer rdb.Close()
			p, err := bus.NewRedis(bus.Config{Client: rdb, HistorySize: tc.size, HistoryTTL: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			chs := make([]wire.Channel, 100)
			for i := range chs {
				chs[i], _ = wire.PersonChannel("acme", fmt.Sprint("user", i))
			}
			m, _ := wire.NewMessage(strings.Repeat("x", 100), wire.ScopePerson, time.Now())
			payload, _ := m.Encode()
			ctx := context.Background()
			if _, err := p.Publish(ctx, chs[0], payload); err != nil { // loads the script
				b.Fatal(err)
			}
			cpu0 := redistest.CPUSeconds(b, rdb)
			b.ResetTimer()
			var wg sync.WaitGroup
			const workers = 8
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < b.N; i += workers {
						if _, err := p.Publish(ctx, chs[i%len(chs)], payload); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric((redistest.CPUSeconds(b, rdb)-cpu0)*1e6/float64(b.N), "redis-µs/op")
		})
	}
}

// BenchmarkPublishBatch measures PublishBatch with history on: 1,000
// notices a call over 100,000 channels (most publishes start a history,
// as the load tool's batch scenario does), and reports the CPU time Redis
// spent per notice:
//
//	cd bus && go test -run '^$' -bench PublishBatch -benchtime 200x .
func BenchmarkPublishBatch(b *testing.B) {
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 16, ContextTimeoutEnabled: true})
	defer rdb.Close()
	p, err := bus.NewRedis(bus.Config{Client: rdb, HistorySize: 100, HistoryTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	const users, batch = 100000, 1000
	chs := make([]wire.Channel, users)
	for i := range chs {
		chs[i], _ = wire.PersonChannel("acme", fmt.Sprint("user", i))
	}
	m, _ := wire.NewMessage(strings.Repeat("x", 100), wire.ScopePerson, time.Now())
	payload, _ := m.Encode()
	ctx := context.Background()
	ns := make([]bus.Notice, batch)
	next := 0
	fill := func() {
		for i := range ns {
			ns[i] = bus.Notice{Channel: chs[next%users], Payload: payload}
			next += 7919 // a prime: every channel in turn, neighbours apart
		}
	}
	fill()
	p.PublishBatch(ctx, ns) // loads the script
	_ = rdb.ConfigResetStat(ctx).Err()
	cpu0 := redistest.CPUSeconds(b, rdb)
	b.ResetTimer()
	for range b.N {
		fill()
		for _, o := range p.PublishBatch(ctx, ns) {
			if o.Err != nil {
				b.Fatal(o.Err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric((redistest.CPUSeconds(b, rdb)-cpu0)*1e6/float64(b.N*batch), "redis-µs/notice")
	if testing.Verbose() {
		stats, _ := rdb.Info(ctx, "commandstats").Result()
		b.Log(stats)
	}
}
