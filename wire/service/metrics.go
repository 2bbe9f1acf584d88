package service

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
)

// Metrics is a small registry of counters and gauges served in the
// Prometheus text format. Counters are plain atomics, cheap on hot paths.
type Metrics struct {
	mu      sync.Mutex
	entries map[string]*metric
}

type metric struct {
	help, kind string
	value      atomic.Int64
	fn         func() int64
}

// Counter is a monotonically increasing count.
type Counter struct{ m *metric }

// Inc adds one.
func (c Counter) Inc() { c.m.value.Add(1) }

// Add adds n.
func (c Counter) Add(n int64) { c.m.value.Add(n) }

// Load returns the current value.
func (c Counter) Load() int64 { return c.m.value.Load() }

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics { return &Metrics{entries: map[string]*metric{}} }

// Counter registers (or returns the existing) counter name.
func (r *Metrics) Counter(name, help string) Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.entries[name]; ok {
		return Counter{m}
	}
	m := &metric{help: help, kind: "counter"}
	r.entries[name] = m
	return Counter{m}
}

// GaugeFunc registers a gauge whose value fn computes at scrape time.
func (r *Metrics) GaugeFunc(name, help string, fn func() int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries[name] = &metric{help: help, kind: "gauge", fn: fn}
}

// CounterFunc registers a counter whose value fn reads at scrape time
// (from a component's own atomic counters).
func (r *Metrics) CounterFunc(name, help string, fn func() int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries[name] = &metric{help: help, kind: "counter", fn: fn}
}

// ServeHTTP writes every metric in the Prometheus text format.
func (r *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	r.mu.Unlock()
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, n := range names {
		r.mu.Lock()
		m := r.entries[n]
		r.mu.Unlock()
		v := m.value.Load()
		if m.fn != nil {
			v = m.fn()
		}
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", n, m.help, n, m.kind, n, v)
	}
}
