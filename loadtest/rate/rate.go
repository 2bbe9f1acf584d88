// Package rate paces a stream of events at a fixed rate without drift: the
// n-th event is due at start + n/rate, so a late sender catches up in a
// burst instead of silently lowering the rate.
package rate

import (
	"context"
	"sync"
	"time"
)

// Pacer hands out event slots. The zero rate means "as fast as asked".
// A Pacer is safe for concurrent use.
type Pacer struct {
	mu       sync.Mutex
	start    time.Time
	perEvent time.Duration // 0: unlimited
	next     int64         // index of the next slot to hand out
	limit    int64         // total slots; <= 0: unbounded
}

// New returns a pacer that starts at start, hands out perSecond slots a
// second (0: unlimited) and at most limit slots in all (<= 0: unbounded).
func New(start time.Time, perSecond float64, limit int64) *Pacer {
	p := &Pacer{start: start, limit: limit}
	if perSecond > 0 {
		p.perEvent = time.Duration(float64(time.Second) / perSecond)
		if p.perEvent <= 0 {
			p.perEvent = 1
		}
	}
	return p
}

// Due is when slot n is due.
func (p *Pacer) Due(n int64) time.Time {
	return p.start.Add(time.Duration(n) * p.perEvent)
}

// Take claims up to max slots that are due at now. It returns the index of
// the first claimed slot and how many were claimed; when none is due yet it
// returns n == 0 and how long to wait; done is true once the limit is spent.
func (p *Pacer) Take(now time.Time, max int) (first int64, n int, wait time.Duration, done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limit > 0 && p.next >= p.limit {
		return p.next, 0, 0, true
	}
	avail := int64(max)
	if p.perEvent > 0 {
		due := int64(now.Sub(p.start)/p.perEvent) + 1 // slots 0..due-1 are due
		if due <= p.next {
			return p.next, 0, p.Due(p.next).Sub(now), false
		}
		avail = min(avail, due-p.next)
	}
	if p.limit > 0 {
		avail = min(avail, p.limit-p.next)
	}
	first = p.next
	p.next += avail
	return first, int(avail), 0, false
}

// Handed is how many slots have been claimed.
func (p *Pacer) Handed() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next
}

// Wait blocks until up to max slots are due (or the limit is spent, or ctx
// ends) and claims them; n == 0 means stop.
func (p *Pacer) Wait(ctx context.Context, max int) (first int64, n int) {
	for {
		if ctx.Err() != nil {
			return p.Handed(), 0
		}
		first, n, wait, done := p.Take(time.Now(), max)
		if n > 0 {
			return first, n
		}
		if done {
			return first, 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return first, 0
		case <-t.C:
		}
	}
}
