package report_test

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oshirase/oshirase/loadtest/hist"
	"github.com/oshirase/oshirase/loadtest/report"
)

func sample() *report.Results {
	var h hist.Hist
	for i := int64(1); i <= 1000; i++ {
		h.Record(i * 1000) // 1 µs .. 1 ms
	}
	s3 := report.Run{Peer: "oshirase", Scenario: "S3", Label: "10000/s", OfferedRate: 10000, Subs: 100}
	s3.SetLatency(&h)
	return &report.Results{Generated: "now", Mode: "quick", Runs: []report.Run{
		{Peer: "oshirase", Scenario: "S1", Subs: 1000, Conns: 200, MemPerSub: 8192, ConnectRate: 5000},
		{Peer: "oshirase", Scenario: "S1", Subs: 5000, Conns: 1000, MemPerSub: 6144, ConnectRate: 4000},
		{Peer: "oshirase", Scenario: "S2", OfferedRate: 5000, DeliveriesPerSec: 5000, Sustainable: true, P99: 2},
		{Peer: "oshirase", Scenario: "S2", OfferedRate: 20000, DeliveriesPerSec: 12000, Sustainable: false, P99: 900},
		{Peer: "oshirase", Scenario: "S2", Label: "held 5000/s for 30s", OfferedRate: 5000, DeliveriesPerSec: 4990, Sustainable: false, P99: 300},
		s3,
		{Peer: "oshirase", Scenario: "S4", Subs: 1000, ToAll: 50},
		{Peer: "oshirase", Scenario: "S5", Label: "mutation", SentRate: 8000},
		{Peer: "bare", Scenario: "S1", Subs: 1000, Conns: 1000, MemPerSub: 7000},
		{Peer: "redis", Scenario: "S5", Label: "redis-benchmark PUBLISH", SentRate: 1.2e6},
	}}
}

func TestSetLatency(t *testing.T) {
	r := sample().Runs[5]
	if r.P50 < 0.49 || r.P50 > 0.51 || r.P99 < 0.98 || r.P99 > 1.0 || r.Max != 1 {
		t.Fatalf("p50 %v p99 %v max %v", r.P50, r.P99, r.Max)
	}
	if len(r.Curve) == 0 || r.Curve[len(r.Curve)-1].Y != 1 {
		t.Fatalf("curve %v", r.Curve)
	}
}

func TestSummary(t *testing.T) {
	md := sample().Markdown()
	for _, want := range []string{
		"| oshirase | 6.0 KiB (5.0k subs / 1.0k conns) | 4.0k | 5.0k (2.0); NOT held 5000/s for 30s: 5.0k/s, p99 300 | – | 0.50 / 0.99 | 50.0 ms to 1.0k tabs | 8.0k |",
		"| bare | 6.8 KiB",
		"Raw Redis `PUBLISH` on the same server (redis-benchmark): 1.20M/s.",
		"### S2 personal throughput",
		"| oshirase | mutation | 8.0k | 0 / 0 | – | – | – | 0 |  |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// S5 shows Redis's CPU and its cost per notice, and pub's, where they
// were measured.
func TestPublishRedisCPU(t *testing.T) {
	r := &report.Results{Runs: []report.Run{
		{Peer: "redis-x3", Scenario: "S5", Label: "bus", SentRate: 20000, Published: 200000, RedisCPU: 0.75, RedisCPUSecs: 7.5},
		{Peer: "redis-x1", Scenario: "S5", Label: "bus", SentRate: 20000, Published: 200000},
		{Peer: "oshirase", Scenario: "S5", Label: "mutation-batch", SentRate: 40000, Published: 400000, RedisCPU: 0.8, RedisCPUSecs: 8, PubCPUSecs: 6},
	}}
	md := r.Details()
	for _, want := range []string{
		"| redis-x3 | bus | 20k | 0 / 0 | 0.75 | 37.5 | – | 0 |  |",
		"| redis-x1 | bus | 20k | 0 / 0 | – | – | – | 0 |  |",
		"| oshirase | mutation-batch | 40k | 0 / 0 | 0.80 | 20.0 | 15.0 | 0 |  |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("details lack %q:\n%s", want, md)
		}
	}
}

func TestSVGIsWellFormed(t *testing.T) {
	for _, r := range []*report.Results{sample(), {}} {
		dec := xml.NewDecoder(strings.NewReader(r.SVG()))
		for {
			_, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("bad SVG: %v", err)
			}
		}
	}
	if !strings.Contains(sample().SVG(), "<polyline") {
		t.Fatal("no lines drawn")
	}
}

func TestSaveLoadDir(t *testing.T) {
	dir := t.TempDir()
	a, b := sample(), &report.Results{Facts: map[string]string{"redis": "7"}, Runs: []report.Run{{Peer: "node", Scenario: "S1"}}}
	if err := a.Save(filepath.Join(dir, "1.json")); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(filepath.Join(dir, "2.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x.txt"), []byte("ignored"), 0o644); err != nil {
		t.Fatal(err)
	}
	all, err := report.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Runs) != len(a.Runs)+1 || all.Facts["redis"] != "7" {
		t.Fatalf("merged %d runs, facts %v", len(all.Runs), all.Facts)
	}
	if got := all.Peers(); strings.Join(got, ",") != "oshirase,bare,redis,node" {
		t.Fatalf("peers %v", got)
	}
}
