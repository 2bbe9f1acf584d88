// Package report holds the load tool's results and renders them: JSON,
// a Markdown table and an SVG plot.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/oshirase/oshirase/loadtest/hist"
)

// Point is one (x, y) of a curve.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Run is one measured phase against one peer.
type Run struct {
	Peer     string `json:"peer"`
	Scenario string `json:"scenario"` // S1 … S5
	Label    string `json:"label"`
	Proto    string `json:"proto,omitempty"`

	Conns         int     `json:"conns,omitempty"`
	Subs          int     `json:"subs,omitempty"`
	Users         int     `json:"users,omitempty"`
	ConnectSecs   float64 `json:"connectSecs,omitempty"`
	ConnectRate   float64 `json:"connectRate,omitempty"` // subscriptions live per second, probes included
	ConnectErrors int     `json:"connectErrors,omitempty"`
	RSSBefore     int64   `json:"rssBefore,omitempty"`
	RSSAfter      int64   `json:"rssAfter,omitempty"`
	MemPerSub     float64 `json:"memPerSubBytes,omitempty"`
	MemPerConn    float64 `json:"memPerConnBytes,omitempty"`

	OfferedRate      float64 `json:"offeredRate,omitempty"`
	SentRate         float64 `json:"sentRate,omitempty"`
	Published        int64   `json:"published,omitempty"`
	Expected         int64   `json:"expected,omitempty"`
	Delivered        int64   `json:"delivered,omitempty"`
	Drops            int64   `json:"drops,omitempty"`
	Errors           int64   `json:"errors,omitempty"`
	Disconnects      int64   `json:"disconnects,omitempty"`
	DeliveriesPerSec float64 `json:"deliveriesPerSec,omitempty"`
	Sustainable      bool    `json:"sustainable,omitempty"`
	ServerCPU        float64 `json:"serverCPU,omitempty"` // cores busy in the server process
	RedisCPU         float64 `json:"redisCPU,omitempty"`  // S6: cores Redis used meanwhile
	RedisCPUSecs     float64 `json:"redisCPUSecs,omitempty"`
	PubCPUSecs       float64 `json:"pubCPUSecs,omitempty"` // S5: CPU time of the publishing server (oshirase pub)

	P50   float64 `json:"p50ms,omitempty"`
	P90   float64 `json:"p90ms,omitempty"`
	P99   float64 `json:"p99ms,omitempty"`
	Max   float64 `json:"maxms,omitempty"`
	ToAll float64 `json:"timeToAllMs,omitempty"` // S4: one notice, send to last delivery

	Curve []Point `json:"curve,omitempty"` // latency percentile curve: x = percentile, y = ms
	Note  string  `json:"note,omitempty"`
}

// RedisMicrosPerNotice is Redis's CPU time per published notice, in
// microseconds ("–" where Redis's CPU was not measured).
func (r Run) RedisMicrosPerNotice() string {
	if r.RedisCPUSecs <= 0 || r.Published <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", r.RedisCPUSecs*1e6/float64(r.Published))
}

// PubMicrosPerNotice is the publishing server's CPU time per published
// notice, in microseconds ("–" where it was not measured).
func (r Run) PubMicrosPerNotice() string {
	if r.PubCPUSecs <= 0 || r.Published <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", r.PubCPUSecs*1e6/float64(r.Published))
}

func redisCores(r Run) string {
	if r.RedisCPUSecs <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", r.RedisCPU)
}

// SetLatency fills the percentiles and the curve from h (nanoseconds).
func (r *Run) SetLatency(h *hist.Hist) {
	ms := func(v int64) float64 { return float64(v) / 1e6 }
	r.P50, r.P90, r.P99, r.Max = ms(h.Quantile(0.5)), ms(h.Quantile(0.9)), ms(h.Quantile(0.99)), ms(h.Max())
	r.Curve = r.Curve[:0]
	if h.Count() == 0 {
		return
	}
	for _, q := range []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100} {
		r.Curve = append(r.Curve, Point{X: q, Y: ms(h.Quantile(q / 100))})
	}
}

// Results is a whole benchmark run.
type Results struct {
	Generated string            `json:"generated"`
	Mode      string            `json:"mode"` // quick or full
	Machine   string            `json:"machine,omitempty"`
	Facts     map[string]string `json:"facts,omitempty"` // versions, settings
	Runs      []Run             `json:"runs"`
}

// Load reads a Results file.
func Load(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	return &r, nil
}

// LoadDir merges every *.json Results in dir, in name order.
func LoadDir(dir string) (*Results, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	all := &Results{Facts: map[string]string{}}
	for _, f := range files {
		r, err := Load(f)
		if err != nil {
			return nil, err
		}
		all.Runs = append(all.Runs, r.Runs...)
		for k, v := range r.Facts {
			all.Facts[k] = v
		}
	}
	return all, nil
}

// Save writes r as indented JSON.
func (r *Results) Save(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Peers lists the peers in first-seen order.
func (r *Results) Peers() []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range r.Runs {
		if !seen[x.Peer] {
			seen[x.Peer] = true
			out = append(out, x.Peer)
		}
	}
	return out
}

// find returns the runs of peer in scenario.
func (r *Results) find(peer, scenario string) []Run {
	var out []Run
	for _, x := range r.Runs {
		if x.Peer == peer && x.Scenario == scenario {
			out = append(out, x)
		}
	}
	return out
}

func kib(b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f KiB", b/1024)
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func ms(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 1:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// Summary is the one-row-per-peer table.
func (r *Results) Summary() string {
	var b strings.Builder
	b.WriteString("| peer | S1 memory / idle sub (largest N) | S1 subs/s connected | S2 max sustained deliveries/s (p99 ms) | S3 1k/s p50 / p99 ms | S3 10k/s p50 / p99 ms | S4 one notice → all tabs | S5 publishes/s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.Peers() {
		cells := []string{p, "–", "–", "–", "–", "–", "–", "–"}
		if s1 := r.find(p, "S1"); len(s1) > 0 {
			big := s1[0]
			for _, x := range s1 {
				if x.Subs > big.Subs {
					big = x
				}
			}
			cells[1] = fmt.Sprintf("%s (%s subs / %s conns)", kib(big.MemPerSub), num(float64(big.Subs)), num(float64(big.Conns)))
			cells[2] = num(big.ConnectRate)
		}
		var best *Run
		for _, x := range r.find(p, "S2") {
			if x.Sustainable && (best == nil || x.DeliveriesPerSec > best.DeliveriesPerSec) {
				best = &x
			}
		}
		if best != nil {
			cells[3] = fmt.Sprintf("%s (%s)", num(best.DeliveriesPerSec), ms(best.P99))
		} else if len(r.find(p, "S2")) > 0 {
			cells[3] = "none sustained"
		}
		for _, x := range r.find(p, "S2") {
			if strings.HasPrefix(x.Label, "held") {
				verdict := "held"
				if !x.Sustainable {
					verdict = "NOT held"
				}
				cells[3] += fmt.Sprintf("; %s %s: %s/s, p99 %s", verdict, strings.TrimPrefix(x.Label, "held "), num(x.DeliveriesPerSec), ms(x.P99))
			}
		}
		for _, x := range r.find(p, "S3") {
			cell := fmt.Sprintf("%s / %s", ms(x.P50), ms(x.P99))
			if x.Drops > 0 {
				cell += fmt.Sprintf(" (%d lost)", x.Drops)
			}
			switch x.OfferedRate {
			case 1000:
				cells[4] = cell
			case 10000:
				cells[5] = cell
			}
		}
		var s4cells []string
		for _, x := range r.find(p, "S4") {
			if x.Users > 1 {
				s4cells = append(s4cells, fmt.Sprintf("%s ms company-wide to %s users", ms(x.ToAll), num(float64(x.Subs))))
			} else {
				s4cells = append(s4cells, fmt.Sprintf("%s ms to %s tabs", ms(x.ToAll), num(float64(x.Subs))))
			}
		}
		if len(s4cells) > 0 {
			cells[6] = strings.Join(s4cells, "; ")
		}
		if s5 := r.find(p, "S5"); len(s5) > 0 {
			cells[7] = num(s5[0].SentRate)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	if s5 := r.find("redis", "S5"); len(s5) > 0 {
		fmt.Fprintf(&b, "\nRaw Redis `PUBLISH` on the same server (redis-benchmark): %s/s.\n", num(s5[0].SentRate))
	}
	return b.String()
}

// Details are one table per scenario, every run.
func (r *Results) Details() string {
	var b strings.Builder
	titles := map[string]string{
		"S1": "S1 idle subscriptions: memory",
		"S2": "S2 personal throughput (sweep; sustained = ≤0.1% lost, p99 under the bound, send rate kept)",
		"S3": "S3 latency at fixed rates",
		"S4": "S4 broadcast: one notice to every tab of one user (oshirase also: one company-wide notice to every user)",
		"S5": "S5 publish API",
	}
	for _, sc := range []string{"S1", "S2", "S3", "S4", "S5"} {
		var runs []Run
		for _, x := range r.Runs {
			if x.Scenario == sc {
				runs = append(runs, x)
			}
		}
		if len(runs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n### %s\n\n", titles[sc])
		switch sc {
		case "S1":
			b.WriteString("| peer | proto | subs | conns | connect s | subs/s | RSS before MiB | RSS after MiB | per sub | per conn | errors | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
			for _, x := range runs {
				fmt.Fprintf(&b, "| %s | %s | %d | %d | %.1f | %s | %.1f | %.1f | %s | %s | %d | %s |\n", x.Peer, x.Proto, x.Subs, x.Conns,
					x.ConnectSecs, num(x.ConnectRate), float64(x.RSSBefore)/(1<<20), float64(x.RSSAfter)/(1<<20), kib(x.MemPerSub), kib(x.MemPerConn), x.ConnectErrors, x.Note)
			}
		case "S5":
			b.WriteString("| peer | how | publishes/s | p50 / p99 ms per call | Redis CPU cores | Redis µs per notice | pub µs per notice | errors | note |\n|---|---|---|---|---|---|---|---|---|\n")
			for _, x := range runs {
				fmt.Fprintf(&b, "| %s | %s | %s | %s / %s | %s | %s | %s | %d | %s |\n", x.Peer, x.Label, num(x.SentRate), ms(x.P50), ms(x.P99),
					redisCores(x), x.RedisMicrosPerNotice(), x.PubMicrosPerNotice(), x.Errors, x.Note)
			}
		default:
			b.WriteString("| peer | run | subs | offered/s | sent/s | delivered | lost | deliveries/s | p50 | p90 | p99 | max ms | to all ms | server CPU | ok | errors / disc. |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
			for _, x := range runs {
				ok := ""
				if sc == "S2" {
					ok = map[bool]string{true: "yes", false: "no"}[x.Sustainable]
				}
				fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %.2f | %s | %d / %d |\n", x.Peer, x.Label, x.Subs,
					num(x.OfferedRate), num(x.SentRate), x.Delivered, x.Drops, num(x.DeliveriesPerSec), ms(x.P50), ms(x.P90), ms(x.P99), ms(x.Max), ms(x.ToAll), x.ServerCPU, ok, x.Errors, x.Disconnects)
			}
		}
	}
	return b.String()
}

// Markdown is the whole report.
func (r *Results) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## oshirase load test — %s run, %s\n\n", r.Mode, r.Generated)
	if r.Machine != "" {
		fmt.Fprintf(&b, "Machine: %s\n\n", r.Machine)
	}
	b.WriteString(r.Summary())
	b.WriteString(r.Details())
	if len(r.Facts) > 0 {
		b.WriteString("\n### Setup\n\n")
		keys := make([]string, 0, len(r.Facts))
		for k := range r.Facts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "- %s: %s\n", k, r.Facts[k])
		}
	}
	return b.String()
}
