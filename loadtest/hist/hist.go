// Package hist is a small HDR-style latency histogram: log-linear buckets
// with a bounded relative error, safe for concurrent recording, cheap to
// merge and to ship between processes in sparse form.
package hist

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// subBits sets the precision: each power-of-two range is split into
// 2^(subBits-1) buckets, so a reported value is within 1/2^(subBits-1)
// (~0.8%) of the recorded one.
const (
	subBits  = 8
	subCount = 1 << subBits
	halfSub  = subCount / 2
	nBuckets = subCount + (64-subBits)*halfSub
)

// Hist counts non-negative int64 values (nanoseconds, by convention).
// The zero value is ready to use; Record is safe for concurrent use.
type Hist struct {
	counts [nBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Int64
	min    atomic.Int64 // stored as min+1 so that zero means "unset"
}

// index maps v to its bucket.
func index(v int64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits
	top := int(v >> shift) // in [halfSub, subCount)
	return subCount + (shift-1)*halfSub + top - halfSub
}

// bounds returns the smallest and largest value bucket i holds.
func bounds(i int) (lo, hi int64) {
	if i < subCount {
		return int64(i), int64(i)
	}
	shift := (i-subCount)/halfSub + 1
	top := int64((i-subCount)%halfSub + halfSub)
	lo = top << shift
	return lo, lo + (int64(1) << shift) - 1
}

// Record adds one value; negative values count as zero.
func (h *Hist) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[index(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(uint64(v))
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.min.Load()
		if (m != 0 && v+1 >= m) || h.min.CompareAndSwap(m, v+1) {
			break
		}
	}
}

// Count is the number of recorded values.
func (h *Hist) Count() uint64 { return h.n.Load() }

// Max is the largest recorded value, exactly.
func (h *Hist) Max() int64 { return h.max.Load() }

// Min is the smallest recorded value, exactly (0 when empty).
func (h *Hist) Min() int64 {
	if m := h.min.Load(); m > 0 {
		return m - 1
	}
	return 0
}

// Mean is the arithmetic mean of the recorded values.
func (h *Hist) Mean() float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return float64(h.sum.Load()) / float64(n)
}

// Quantile returns the value at quantile q in [0, 1]: the midpoint of the
// bucket holding the ceil(q*n)-th value, clamped to the exact min and max.
func (h *Hist) Quantile(q float64) int64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	if q <= 0 {
		return h.Min()
	}
	if q >= 1 {
		return h.Max()
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank == 0 {
		rank = 1
	}
	if rank >= n {
		return h.Max()
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := bounds(i)
			v := lo + (hi-lo)/2
			return min(max(v, h.Min()), h.Max())
		}
	}
	return h.Max()
}

// Reset clears h. It is not atomic with respect to concurrent Records.
func (h *Hist) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.n.Store(0)
	h.sum.Store(0)
	h.max.Store(0)
	h.min.Store(0)
}

// Merge adds every value of o into h.
func (h *Hist) Merge(o *Hist) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.mergeTotals(o.n.Load(), o.sum.Load(), o.Min(), o.max.Load())
}

func (h *Hist) mergeTotals(n, sum uint64, mn, mx int64) {
	if n == 0 {
		return
	}
	h.n.Add(n)
	h.sum.Add(sum)
	for {
		m := h.max.Load()
		if mx <= m || h.max.CompareAndSwap(m, mx) {
			break
		}
	}
	for {
		m := h.min.Load()
		if (m != 0 && mn+1 >= m) || h.min.CompareAndSwap(m, mn+1) {
			break
		}
	}
}

// Snapshot is the sparse, JSON-friendly form of a Hist.
type Snapshot struct {
	Index []int    `json:"i"`
	Count []uint64 `json:"c"`
	N     uint64   `json:"n"`
	Sum   uint64   `json:"sum"`
	Min   int64    `json:"min"`
	Max   int64    `json:"max"`
}

// Snapshot returns the non-empty buckets of h.
func (h *Hist) Snapshot() Snapshot {
	s := Snapshot{N: h.n.Load(), Sum: h.sum.Load(), Min: h.Min(), Max: h.Max()}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			s.Index = append(s.Index, i)
			s.Count = append(s.Count, c)
		}
	}
	return s
}

// MergeSnapshot adds a snapshot (from another process) into h.
func (h *Hist) MergeSnapshot(s Snapshot) {
	for k, i := range s.Index {
		if i >= 0 && i < nBuckets && k < len(s.Count) {
			h.counts[i].Add(s.Count[k])
		}
	}
	h.mergeTotals(s.N, s.Sum, s.Min, s.Max)
}
