package hub_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/wire"
)

// BenchmarkFanOut: one notice to N local subscribers of one channel (N tabs
// of one user, or a company-wide notice). Reported per notice; subscribers
// drain their queues between rounds, outside the timer.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := hub.New(hub.Config{Bus: newFakeBus(), QueueSize: 1})
			defer h.Close()
			ch := channel(b, "everyone")
			subs := make([]*hub.Subscription, n)
			for i := range subs {
				subs[i], _ = h.Subscribe(context.Background(), []wire.Channel{ch}, nil)
			}
			p := payload(b, "hello")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				h.Deliver(ch, p)
				b.StopTimer()
				for _, s := range subs {
					<-s.C()
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkPersonal: N notices to N different users, one subscription each.
func BenchmarkPersonal(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			h := hub.New(hub.Config{Bus: newFakeBus(), QueueSize: 1})
			defer h.Close()
			chs := make([]wire.Channel, n)
			subs := make([]*hub.Subscription, n)
			payloads := make([][]byte, n)
			for i := range n {
				chs[i] = channel(b, fmt.Sprint("user-", i))
				subs[i], _ = h.Subscribe(context.Background(), []wire.Channel{chs[i]}, nil)
				payloads[i] = payload(b, "hello")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for i := range n {
					h.Deliver(chs[i], payloads[i])
				}
				b.StopTimer()
				for _, s := range subs {
					<-s.C()
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
