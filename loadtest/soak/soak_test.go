package soak

import (
	"strings"
	"testing"
	"time"
)

func series(rss, goroutines, keys []int64) []Sample {
	out := make([]Sample, len(rss))
	for i := range rss {
		out[i] = Sample{At: time.Duration(i) * 10 * time.Second, RSS: rss[i], Goroutines: goroutines[i], RedisKeys: keys[i]}
	}
	return out
}

func TestJudge(t *testing.T) {
	const mib = 1 << 20
	flat := series(
		[]int64{100 * mib, 104 * mib, 98 * mib, 101 * mib, 103 * mib, 99 * mib},
		[]int64{2000, 2100, 1950, 2050, 1990, 2080},
		[]int64{3000, 3000, 3001, 3000, 3000, 2999},
	)
	vs, err := Judge(flat)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if !v.Flat {
			t.Errorf("%s judged growing: %+v", v.Name, v)
		}
	}
	leaking := series(
		[]int64{100 * mib, 110 * mib, 120 * mib, 130 * mib, 140 * mib, 150 * mib},
		[]int64{2000, 2400, 2800, 3200, 3600, 4000},
		[]int64{3000, 3500, 4000, 4500, 5000, 5500},
	)
	vs, err = Judge(leaking)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Flat {
			t.Errorf("%s judged flat: %+v", v.Name, v)
		}
	}
	if _, err := Judge(flat[:2]); err == nil {
		t.Fatal("2 samples judged")
	}
	// Small numbers: a handful of keys more is noise, not growth.
	small := series([]int64{10 * mib, 10 * mib, 11 * mib}, []int64{10, 12, 14}, []int64{0, 3, 5})
	vs, _ = Judge(small)
	for _, v := range vs {
		if !v.Flat {
			t.Errorf("%s: small numbers judged growing: %+v", v.Name, v)
		}
	}
	if tab := Table(leaking, vs); !strings.Contains(tab, "| rss |") || !strings.Contains(tab, "| 50s |") {
		t.Fatalf("table:\n%s", tab)
	}
}
