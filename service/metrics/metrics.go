// Package metrics serves the counters and gauges components expose, in the
// Prometheus text format.
package metrics

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
)

// Registry is a small registry of counters and gauges served in the
// Prometheus text format. Values are read at scrape time from the
// components' own atomic counters, so hot paths pay nothing extra.
type Registry struct {
	mu      sync.Mutex
	entries map[string]*metric
}

type metric struct {
	help, kind string
	fn         func() int64
}

// New returns an empty registry.
func New() *Registry { return &Registry{entries: map[string]*metric{}} }

// GaugeFunc registers a gauge whose value fn computes at scrape time.
func (r *Registry) GaugeFunc(name, help string, fn func() int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries[name] = &metric{help: help, kind: "gauge", fn: fn}
}

// CounterFunc registers a counter whose value fn reads at scrape time
// (from a component's own atomic counters).
func (r *Registry) CounterFunc(name, help string, fn func() int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries[name] = &metric{help: help, kind: "counter", fn: fn}
}

// ServeHTTP writes every metric in the Prometheus text format.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
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
		v := m.fn()
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", n, m.help, n, m.kind, n, v)
	}
}
