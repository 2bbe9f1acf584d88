// Package metrics is the one home of both services' Prometheus metrics: a
// client_golang registry with the Go runtime and process collectors, the
// components' counters read at scrape time, histograms, and /metrics.
//
// Counters and gauges are read at scrape time from the components' own
// atomic counters (CounterFunc, GaugeFunc), so a hot path pays nothing for
// them beyond its atomic add; a histogram costs one Observe where it is
// measured.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Observer takes one measurement: a histogram, or Discard. Components take
// an Observer (nil: Discard), so they do not depend on how it is collected.
type Observer = prometheus.Observer

// Discard is an Observer that keeps nothing.
var Discard Observer = discard{}

type discard struct{}

func (discard) Observe(float64) {}

// Or returns o, or Discard when o is nil.
func Or(o Observer) Observer {
	if o == nil {
		return Discard
	}
	return o
}

// Buckets for the histograms both services keep.
var (
	// LatencyBuckets (seconds) suit times measured in milliseconds: a
	// publish, a delivery's lag (notices carry their publish time in Unix
	// milliseconds, so nothing finer is known), from 1 ms to 10 s.
	LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// FastBuckets (seconds) suit work done in memory: a notice's fan-out
	// to this instance's subscriptions, from 10 µs to 1 s.
	FastBuckets = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}
	// ByteBuckets suit write queues: 256 B to 4 MiB, by fours
	// (WRITE_QUEUE_BYTES defaults to 1 MiB).
	ByteBuckets = prometheus.ExponentialBuckets(256, 4, 8)
)

// Registry holds a service's metrics and serves them.
type Registry struct {
	reg *prometheus.Registry
	h   http.Handler
}

// New returns a registry with the Go runtime (go_goroutines, go_memstats_…,
// go_gc_…) and process (process_resident_memory_bytes, process_open_fds, …)
// collectors.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{reg: reg, h: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})}
}

// GaugeFunc registers a gauge whose value fn computes at scrape time.
func (r *Registry) GaugeFunc(name, help string, fn func() int64) {
	r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(fn()) }))
}

// CounterFunc registers a counter whose value fn reads at scrape time
// (from a component's own atomic counter).
func (r *Registry) CounterFunc(name, help string, fn func() int64) {
	r.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(fn()) }))
}

// LabeledCounterFuncs registers one counter per value of label, each read
// at scrape time by its function: name{label="value"}.
func (r *Registry) LabeledCounterFuncs(name, help, label string, fns map[string]func() int64) {
	for value, fn := range fns {
		r.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: name, Help: help, ConstLabels: prometheus.Labels{label: value},
		}, func() float64 { return float64(fn()) }))
	}
}

// Histogram registers and returns a histogram with buckets.
func (r *Registry) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	r.reg.MustRegister(h)
	return h
}

// Gatherer is the registry, for tests that read it.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// ServeHTTP serves the metrics in the Prometheus text format (or what the
// scraper negotiates).
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.h.ServeHTTP(w, req) }
