package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/oshirase/oshirase/service/metrics"
)

// /metrics serves, in the Prometheus text format, the runtime and process
// collectors, counters and gauges read at scrape time, labeled counters and
// histograms.
func TestRegistryServesTextFormat(t *testing.T) {
	reg := metrics.New()
	n := int64(3)
	reg.CounterFunc("test_things_total", "Things.", func() int64 { return n })
	reg.GaugeFunc("test_open", "Open things.", func() int64 { return -2 })
	reg.LabeledCounterFuncs("test_ends_total", "Ends by reason.", "reason", map[string]func() int64{
		"a": func() int64 { return 1 },
		"b": func() int64 { return 2 },
	})
	h := reg.Histogram("test_duration_seconds", "Durations.", metrics.LatencyBuckets)
	h.Observe(0.003)
	h.Observe(2)
	n = 1 << 40 // read at scrape time, exactly

	srv := httptest.NewServer(reg)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("not the text format: %v", err)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_open_fds"} {
		if fams[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	if got := fams["test_things_total"].GetMetric()[0].GetCounter().GetValue(); got != 1<<40 {
		t.Errorf("test_things_total = %v, want %d", got, int64(1<<40))
	}
	if got := fams["test_open"].GetMetric()[0].GetGauge().GetValue(); got != -2 {
		t.Errorf("test_open = %v", got)
	}
	ends := map[string]float64{}
	for _, m := range fams["test_ends_total"].GetMetric() {
		ends[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	if len(ends) != 2 || ends["a"] != 1 || ends["b"] != 2 {
		t.Errorf("test_ends_total = %v", ends)
	}
	hist := fams["test_duration_seconds"]
	if hist.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("test_duration_seconds is a %v", hist.GetType())
	}
	hm := hist.GetMetric()[0].GetHistogram()
	if hm.GetSampleCount() != 2 || hm.GetSampleSum() != 2.003 {
		t.Errorf("histogram count %d sum %v, want 2 and 2.003", hm.GetSampleCount(), hm.GetSampleSum())
	}
	for _, b := range hm.GetBucket() {
		want := uint64(0)
		switch {
		case b.GetUpperBound() >= 2:
			want = 2
		case b.GetUpperBound() >= 0.003:
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
}

// A nil Observer is Discard.
func TestOr(t *testing.T) {
	if metrics.Or(nil) != metrics.Discard {
		t.Fatal("Or(nil) is not Discard")
	}
	h := metrics.New().Histogram("x_seconds", "x", metrics.FastBuckets)
	if metrics.Or(h) != h {
		t.Fatal("Or(h) is not h")
	}
}

// What one observation costs on a hot path: the histogram's Observe, and
// the clock reads a duration needs.
func BenchmarkObserve(b *testing.B) {
	h := metrics.New().Histogram("bench_seconds", "b", metrics.LatencyBuckets)
	b.Run("histogram", func(b *testing.B) {
		for i := range b.N {
			h.Observe(float64(i%1000) / 1e4)
		}
	})
	b.Run("histogram-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				h.Observe(float64(i%1000) / 1e4)
			}
		})
	})
	b.Run("discard", func(b *testing.B) {
		o := metrics.Or(nil)
		for i := range b.N {
			o.Observe(float64(i))
		}
	})
	b.Run("time.Since", func(b *testing.B) {
		start := time.Now()
		var s float64
		for range b.N {
			s += time.Since(start).Seconds()
		}
		_ = s
	})
}
