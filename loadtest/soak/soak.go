// Package soak judges a soak run: samples of sub's resident memory, its
// goroutines and Redis's key count, taken every few seconds while
// connections churn, should stay flat — the last third of the run no
// higher than the first third, within a tolerance.
package soak

import (
	"fmt"
	"strings"
	"time"
)

// Sample is one reading.
type Sample struct {
	At         time.Duration `json:"at"` // since the load started
	RSS        int64         `json:"rssBytes"`
	Goroutines int64         `json:"goroutines"`
	RedisKeys  int64         `json:"redisKeys"`
	Open       int64         `json:"openConnections"` // sub's gauge
	Connects   int64         `json:"connects"`        // client connects so far
	Failures   int64         `json:"failures"`        // client connects or subscribes that failed so far
	Published  int64         `json:"published"`       // publishes so far
	SlowClosed int64         `json:"slowClosed"`      // sub's slow consumers closed so far
}

// Tolerance is how much the last third may exceed the first, per series:
// a fraction of the first third's mean plus an absolute slack (noise of a
// small number).
type Tolerance struct {
	Fraction float64
	Slack    float64
}

// Tolerances used by Judge.
var (
	RSSTolerance        = Tolerance{Fraction: 0.15, Slack: 8 << 20}
	GoroutinesTolerance = Tolerance{Fraction: 0.15, Slack: 50}
	KeysTolerance       = Tolerance{Fraction: 0.10, Slack: 20}
)

// Verdict is one series' judgement.
type Verdict struct {
	Name        string  `json:"name"`
	First, Last float64 // means of the first and last thirds
	Growth      float64 `json:"growth"` // (Last − First) / First
	Flat        bool    `json:"flat"`
}

// Judge compares the first and last thirds of samples (at least 3) for
// RSS, goroutines and Redis keys.
func Judge(samples []Sample) ([]Verdict, error) {
	if len(samples) < 3 {
		return nil, fmt.Errorf("soak: %d samples, need at least 3 (run longer)", len(samples))
	}
	third := len(samples) / 3
	first, last := samples[:third], samples[len(samples)-third:]
	series := []struct {
		name string
		get  func(Sample) int64
		tol  Tolerance
	}{
		{"rss", func(s Sample) int64 { return s.RSS }, RSSTolerance},
		{"goroutines", func(s Sample) int64 { return s.Goroutines }, GoroutinesTolerance},
		{"redis_keys", func(s Sample) int64 { return s.RedisKeys }, KeysTolerance},
	}
	var out []Verdict
	for _, s := range series {
		f, l := mean(first, s.get), mean(last, s.get)
		v := Verdict{Name: s.name, First: f, Last: l, Flat: l <= f*(1+s.tol.Fraction)+s.tol.Slack}
		if f > 0 {
			v.Growth = (l - f) / f
		}
		out = append(out, v)
	}
	return out, nil
}

func mean(samples []Sample, get func(Sample) int64) float64 {
	var sum float64
	for _, s := range samples {
		sum += float64(get(s))
	}
	return sum / float64(len(samples))
}

// Table renders samples and verdicts as Markdown.
func Table(samples []Sample, verdicts []Verdict) string {
	var b strings.Builder
	b.WriteString("| t | sub RSS MiB | goroutines | Redis keys | open conns | connects | failed | published | slow closed |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "| %s | %.1f | %d | %d | %d | %d | %d | %d | %d |\n", s.At.Round(time.Second), float64(s.RSS)/(1<<20),
			s.Goroutines, s.RedisKeys, s.Open, s.Connects, s.Failures, s.Published, s.SlowClosed)
	}
	b.WriteString("\n| series | first third | last third | growth | flat |\n|---|---|---|---|---|\n")
	for _, v := range verdicts {
		f, l := fmt.Sprintf("%.0f", v.First), fmt.Sprintf("%.0f", v.Last)
		if v.Name == "rss" {
			f, l = fmt.Sprintf("%.1f MiB", v.First/(1<<20)), fmt.Sprintf("%.1f MiB", v.Last/(1<<20))
		}
		flat := "yes"
		if !v.Flat {
			flat = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %+.1f %% | %s |\n", v.Name, f, l, 100*v.Growth, flat)
	}
	return b.String()
}
