package hist_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"

	"github.com/oshirase/oshirase/loadtest/hist"
)

func TestEmpty(t *testing.T) {
	var h hist.Hist
	if h.Count() != 0 || h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Fatalf("empty histogram not all zero")
	}
}

func TestSmallValuesExact(t *testing.T) {
	var h hist.Hist
	for v := int64(1); v <= 100; v++ {
		h.Record(v)
	}
	for _, tc := range []struct {
		q    float64
		want int64
	}{{0, 1}, {0.01, 1}, {0.5, 50}, {0.9, 90}, {0.99, 99}, {1, 100}} {
		if got := h.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %d, want %d", tc.q, got, tc.want)
		}
	}
	if h.Mean() != 50.5 {
		t.Errorf("Mean = %v", h.Mean())
	}
}

func TestRelativeError(t *testing.T) {
	var h hist.Hist
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]int64, 100000)
	for i := range vals {
		// log-uniform between 1 µs and 10 s
		vals[i] = int64(math.Exp(r.Float64()*math.Log(1e7)) * 1e3)
		h.Record(vals[i])
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 0.999} {
		want := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := h.Quantile(q)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
			t.Errorf("q%v: got %d want %d (rel err %.4f)", q, got, want, rel)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
		t.Errorf("min/max not exact: %d %d vs %d %d", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
	}
}

func TestHugeAndNegative(t *testing.T) {
	var h hist.Hist
	h.Record(-5)
	h.Record(math.MaxInt64)
	if h.Min() != 0 || h.Max() != math.MaxInt64 || h.Count() != 2 {
		t.Fatalf("min %d max %d n %d", h.Min(), h.Max(), h.Count())
	}
	if h.Quantile(0.99) != math.MaxInt64 {
		t.Fatalf("q99 = %d", h.Quantile(0.99))
	}
}

func TestMergeAndSnapshot(t *testing.T) {
	var a, b, all hist.Hist
	for i := int64(0); i < 1000; i++ {
		a.Record(i * 1000)
		b.Record(i*1000 + 500000)
		all.Record(i * 1000)
		all.Record(i*1000 + 500000)
	}
	var viaMerge hist.Hist
	viaMerge.Merge(&a)
	viaMerge.Merge(&b)

	var viaSnap hist.Hist
	for _, h := range []*hist.Hist{&a, &b} {
		raw, err := json.Marshal(h.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		var s hist.Snapshot
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		viaSnap.MergeSnapshot(s)
	}
	for _, h := range []*hist.Hist{&viaMerge, &viaSnap} {
		if h.Count() != all.Count() || h.Min() != all.Min() || h.Max() != all.Max() || h.Mean() != all.Mean() {
			t.Fatalf("totals differ: %d %d %d %v", h.Count(), h.Min(), h.Max(), h.Mean())
		}
		for _, q := range []float64{0.25, 0.5, 0.99} {
			if h.Quantile(q) != all.Quantile(q) {
				t.Errorf("q%v: %d vs %d", q, h.Quantile(q), all.Quantile(q))
			}
		}
	}
}

func TestConcurrentRecord(t *testing.T) {
	var h hist.Hist
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10000; i++ {
				h.Record(int64(i))
			}
		}()
	}
	wg.Wait()
	if h.Count() != 80000 || h.Max() != 9999 || h.Min() != 0 {
		t.Fatalf("n %d max %d min %d", h.Count(), h.Max(), h.Min())
	}
	h.Reset()
	if h.Count() != 0 || h.Max() != 0 {
		t.Fatal("reset did not clear")
	}
}
