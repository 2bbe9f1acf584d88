package hub_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/wire"
)

// discard is a sink that keeps nothing: the benchmarks measure the hub.
type discard struct{}

func (discard) Send(wire.Channel, *wire.Message, []byte) hub.Verdict { return hub.Sent }

// BenchmarkFanOut: one notice to N local subscribers of one channel (N tabs
// of one user, or a company-wide notice), rendered once. Reported per notice.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := hub.New(hub.Config{Bus: newFakeBus()})
			benchFanOut(b, h, n)
		})
	}
}

// BenchmarkFanOutObserved is BenchmarkFanOut with the fan-out duration
// observed in a Prometheus histogram, as sub does: the difference is what
// the histogram costs per notice.
func BenchmarkFanOutObserved(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := hub.New(hub.Config{Bus: newFakeBus(), FanOut: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "fanout_seconds", Buckets: prometheus.DefBuckets,
			})})
			benchFanOut(b, h, n)
		})
	}
}

func benchFanOut(b *testing.B, h *hub.Hub, n int) {
	defer h.Close()
	ch := channel(b, "everyone")
	sh := &shape{name: "s"}
	for range n {
		_, _ = h.Subscribe(context.Background(), []wire.Channel{ch}, sh, discard{})
	}
	p := payload(b, "hello")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.Deliver(ch, p)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkPersonal: N notices to N different users, one subscription each.
func BenchmarkPersonal(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			h := hub.New(hub.Config{Bus: newFakeBus()})
			defer h.Close()
			chs := make([]wire.Channel, n)
			payloads := make([][]byte, n)
			sh := &shape{name: "s"}
			for i := range n {
				chs[i] = channel(b, fmt.Sprint("user-", i))
				_, _ = h.Subscribe(context.Background(), []wire.Channel{chs[i]}, sh, discard{})
				payloads[i] = payload(b, "hello")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for i := range n {
					h.Deliver(chs[i], payloads[i])
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
