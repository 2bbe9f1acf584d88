package publisher

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/oshirase/oshirase/bus"
)

// Single publishes that arrive while others are on their way to Redis
// travel together: one sender takes every publish waiting in the queue (up
// to bus.ScriptBatch) and hands them to the bus as one batch — one
// publish.lua call and one round trip instead of one each. A lone publish
// goes at once; nothing waits for company. Each publish is still its own
// atomic step inside the script.
//
// One sender, not one per core: Redis pays about as much for each script
// call (its round trip, its wakeup) as for several notices, and a second
// sender halves the batches. With 32 callers on 2 cores, one sender sent
// 13-14 notices a call instead of 7-8, and Redis spent 10 % less CPU per
// notice (BenchmarkSendNotification in internal/app). A publish that finds
// the sender busy waits for its round trip: a fraction of a millisecond.

// waiting is one publish in the queue.
type waiting struct {
	n        bus.Notice
	deadline time.Time
	done     chan bus.Outcome // buffered: a sender never blocks on it
}

// coalescer is the queue and its sender.
type coalescer struct {
	once  sync.Once
	queue chan waiting
	wg    sync.WaitGroup
	mu    sync.RWMutex // held to send on queue, and exclusively to close it
	shut  bool
}

// publishOne publishes n through the queue within p.cfg.Timeout.
func (p *Publisher) publishOne(n bus.Notice) bus.Outcome {
	c := &p.coal
	c.mu.RLock()
	shut := c.shut
	c.mu.RUnlock()
	if shut {
		return bus.Outcome{Err: fmt.Errorf("%w: publisher closed", bus.ErrUnavailable)}
	}
	c.once.Do(func() {
		c.queue = make(chan waiting, 4096)
		c.wg.Add(1)
		go p.send()
	})
	w := waiting{n: n, deadline: time.Now().Add(p.cfg.Timeout), done: make(chan bus.Outcome, 1)}
	c.mu.RLock()
	if c.shut {
		c.mu.RUnlock()
		return bus.Outcome{Err: fmt.Errorf("%w: publisher closed", bus.ErrUnavailable)}
	}
	c.queue <- w
	c.mu.RUnlock()
	return <-w.done
}

// send is the sender: it takes a publish, every other one waiting, and
// publishes them together. A publish whose deadline passed while it
// waited is not sent: it fails as unavailable, as it would have after
// waiting that long for Redis.
func (p *Publisher) send() {
	c := &p.coal
	defer c.wg.Done()
	batch := make([]waiting, 0, bus.ScriptBatch)
	notices := make([]bus.Notice, 0, bus.ScriptBatch)
	for w := range c.queue {
		batch = append(batch[:0], w)
	more:
		for len(batch) < bus.ScriptBatch {
			select {
			case w, ok := <-c.queue:
				if !ok {
					break more
				}
				batch = append(batch, w)
			default:
				break more
			}
		}
		now := time.Now()
		notices = notices[:0]
		deadline := time.Time{}
		live := batch[:0]
		for _, w := range batch {
			if !now.Before(w.deadline) {
				w.done <- bus.Outcome{Err: fmt.Errorf("%w: publish: waited past PUBLISH_TIMEOUT", bus.ErrUnavailable)}
				continue
			}
			if deadline.IsZero() || w.deadline.Before(deadline) {
				deadline = w.deadline
			}
			live = append(live, w)
			notices = append(notices, w.n)
		}
		if len(live) == 0 {
			continue
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		for i, o := range p.cfg.Bus.PublishBatch(ctx, notices) {
			live[i].done <- o
		}
		cancel()
	}
}

// Close stops the sender once the publishes in the queue are sent.
// Publishing after Close fails as unavailable.
func (p *Publisher) Close() {
	c := &p.coal
	c.mu.Lock()
	if c.shut {
		c.mu.Unlock()
		return
	}
	c.shut = true
	if c.queue != nil {
		close(c.queue)
	}
	c.mu.Unlock()
	c.wg.Wait()
}
