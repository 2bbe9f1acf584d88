// Package publish sends notices the ways the peers accept them: a GraphQL
// mutation over keep-alive HTTP (oshirase's pub, the Node peer), straight
// into Redis in a peer's own channel and message format, or Centrifugo's
// HTTP API.
package publish

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oshirase/oshirase/loadtest/hist"
	"github.com/oshirase/oshirase/loadtest/rate"
)

// Notice is one notice to send.
type Notice struct {
	User string
	Text string
}

// Publisher sends batches of notices. It is safe for concurrent use.
type Publisher interface {
	// Publish sends ns and returns how many live subscriptions the
	// receivers reported in all (-1 when the transport does not say) and
	// how many notices failed, with the first error.
	Publish(ctx context.Context, ns []Notice) (received int64, failed int, err error)
	// MaxBatch is the largest batch worth handing to Publish at once.
	MaxBatch() int
	Close() error
}

// Stats sums up a Drive.
type Stats struct {
	Sent      int64
	Failed    int64
	Received  int64 // sum of the receivers' counts; -1 if unknown
	FirstErr  string
	Start     time.Time
	End       time.Time
	CallLat   hist.Hist // time per Publish call
	LastStart time.Time // send time of the last notice
}

// Rate is the achieved send rate.
func (s *Stats) Rate() float64 {
	d := s.End.Sub(s.Start).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(s.Sent) / d
}

// Drive sends notices paced by p with conc concurrent senders until p's
// limit is spent or ctx ends. text(seq, now) and user(seq) make notice seq.
func Drive(ctx context.Context, pub Publisher, p *rate.Pacer, conc int,
	user func(seq int64) string, text func(seq int64, now time.Time) string) *Stats {
	st := &Stats{Start: time.Now()}
	var sent, failed, received atomic.Int64
	var unknown atomic.Bool
	var errOnce sync.Once
	var wg sync.WaitGroup
	for g := 0; g < max(conc, 1); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]Notice, 0, pub.MaxBatch())
			for {
				first, n := p.Wait(ctx, pub.MaxBatch())
				if n == 0 {
					return
				}
				now := time.Now()
				batch = batch[:0]
				for i := first; i < first+int64(n); i++ {
					batch = append(batch, Notice{User: user(i), Text: text(i, now)})
				}
				rcv, bad, err := pub.Publish(context.WithoutCancel(ctx), batch) // let the last call finish
				st.CallLat.Record(int64(time.Since(now)))
				if err != nil {
					errOnce.Do(func() { st.FirstErr = err.Error() })
				}
				sent.Add(int64(n - bad))
				failed.Add(int64(bad))
				if rcv < 0 {
					unknown.Store(true)
				} else {
					received.Add(rcv)
				}
			}
		}()
	}
	wg.Wait()
	st.End = time.Now()
	st.Sent, st.Failed, st.Received = sent.Load(), failed.Load(), received.Load()
	if unknown.Load() {
		st.Received = -1
	}
	return st
}
