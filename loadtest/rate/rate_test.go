package rate_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/oshirase/oshirase/loadtest/rate"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestTakeFollowsSchedule(t *testing.T) {
	p := rate.New(t0, 1000, 0) // one slot per ms
	steps := []struct {
		at              time.Duration
		max             int
		wantFirst       int64
		wantN           int
		wantWaitAtLeast time.Duration
	}{
		{0, 10, 0, 1, 0},                          // slot 0 due at start
		{0, 10, 1, 0, time.Millisecond},           // slot 1 not yet due
		{5 * time.Millisecond, 10, 1, 5, 0},       // slots 1..5 due
		{5 * time.Millisecond, 10, 6, 0, 1},       // caught up
		{100 * time.Millisecond, 10, 6, 10, 0},    // late: burst capped by max
		{100 * time.Millisecond, 1000, 16, 85, 0}, // rest of the backlog
	}
	for i, s := range steps {
		first, n, wait, done := p.Take(t0.Add(s.at), s.max)
		if done || first != s.wantFirst || n != s.wantN || wait < s.wantWaitAtLeast {
			t.Fatalf("step %d: first %d n %d wait %v done %v", i, first, n, wait, done)
		}
	}
	if p.Handed() != 101 {
		t.Fatalf("handed %d", p.Handed())
	}
}

func TestLimit(t *testing.T) {
	p := rate.New(t0, 0, 7) // unlimited rate, 7 slots
	_, n, _, _ := p.Take(t0, 5)
	_, m, _, _ := p.Take(t0, 5)
	_, z, _, done := p.Take(t0, 5)
	if n != 5 || m != 2 || z != 0 || !done {
		t.Fatalf("n %d m %d z %d done %v", n, m, z, done)
	}
}

func TestDue(t *testing.T) {
	p := rate.New(t0, 250, 0)
	if got := p.Due(10).Sub(t0); got != 40*time.Millisecond {
		t.Fatalf("Due(10) = %v", got)
	}
}

func TestWaitConcurrent(t *testing.T) {
	p := rate.New(time.Now(), 20000, 2000)
	var mu sync.Mutex
	seen := make(map[int64]bool)
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				first, n := p.Wait(context.Background(), 16)
				if n == 0 {
					return
				}
				mu.Lock()
				for i := first; i < first+int64(n); i++ {
					if seen[i] {
						t.Errorf("slot %d handed twice", i)
					}
					seen[i] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 2000 {
		t.Fatalf("handed %d slots", len(seen))
	}
	// 2000 slots at 20k/s take ~100 ms; allow generous slack on a busy box.
	if el := time.Since(start); el < 90*time.Millisecond || el > 2*time.Second {
		t.Fatalf("took %v", el)
	}
}

func TestWaitCancel(t *testing.T) {
	p := rate.New(time.Now().Add(time.Hour), 1, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, n := p.Wait(ctx, 1); n != 0 {
		t.Fatalf("got %d slots before start", n)
	}
}

func TestWaitCancelUnlimited(t *testing.T) {
	p := rate.New(time.Now(), 0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	if _, n := p.Wait(ctx, 8); n != 8 {
		t.Fatalf("got %d", n)
	}
	cancel()
	if _, n := p.Wait(ctx, 8); n != 0 {
		t.Fatalf("unlimited pacer ignored cancellation: %d", n)
	}
}
