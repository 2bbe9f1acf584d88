package logging

import (
	"sync/atomic"
	"time"
)

// Throttle lets a repeated log line through at most once per interval, so
// that a flood (junk published on a channel, a long Redis outage) is
// logged without drowning the log. Counters, not logs, carry the totals.
type Throttle struct {
	Interval   time.Duration // zero: one second
	last       atomic.Int64  // unix nanoseconds of the last line let through
	suppressed atomic.Int64
}

// Allow reports whether to log now, and how many lines were held back
// since the last one that was let through.
func (t *Throttle) Allow() (ok bool, suppressed int64) {
	every := t.Interval
	if every <= 0 {
		every = time.Second
	}
	now := time.Now().UnixNano()
	last := t.last.Load()
	if now-last < int64(every) || !t.last.CompareAndSwap(last, now) {
		t.suppressed.Add(1)
		return false, 0
	}
	return true, t.suppressed.Swap(0)
}
