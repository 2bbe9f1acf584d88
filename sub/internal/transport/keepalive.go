package transport

import (
	"sync"
	"time"
)

// Keep-alives. Every open connection is sent its protocol's keep-alive
// frame (graphql-transport-ws "ping", legacy "ka", SSE ": ping") once per
// KeepAlive interval, and one timer serves them all: the connections are
// spread over slots, one slot per tick of about kaTick, and each tick
// queues the frames of one slot. The write workers then take those
// connections in chunks, as they take a fan-out's. Ticks are short so that
// a slot stays small: the frames of one tick wait in the write queue ahead
// of notices that come meanwhile.
//
// A timer per connection would start a goroutine for every ping and wake a
// write worker for it alone: at 10,000 idle connections a thousand
// scheduler wake-ups a second, which cost an idle sub more than the pings'
// writes do (loadtest/README, "Keep-alives"). While idle, a
// connection now holds nothing but its parked reader and its place in a
// slot.

// kaTick is about how often the schedule ticks: the interval is split into
// interval/kaTick slots, at least one and at most kaMaxSlots (at the
// default KEEPALIVE_INTERVAL of 10s, 100 slots, a tick every 100 ms).
const (
	kaTick     = 100 * time.Millisecond
	kaMaxSlots = 100
)

// keepAlive is the Server's keep-alive schedule.
type keepAlive struct {
	tick time.Duration // the interval over len(slots)

	mu      sync.Mutex
	slots   []map[*conn][]byte // each connection's keep-alive frame
	next    int                // the slot the next tick pings
	n       int                // connections in the slots
	timer   *time.Timer
	armed   bool // a tick is due or running
	stopped bool

	// what a tick sends, reused: ticks never overlap (the next is armed
	// when one has queued everything)
	conns  []*conn
	frames [][]byte
}

func newKeepAlive(interval time.Duration) keepAlive {
	n := min(max(int(interval/kaTick), 1), kaMaxSlots)
	return keepAlive{tick: interval / time.Duration(n), slots: make([]map[*conn][]byte, n)}
}

// add pings c with frame every interval from now on, until remove. The
// first ping comes an interval after add, less at most one tick.
func (k *keepAlive) add(c *conn, frame []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c.mu.Lock()
	closed := c.state == stateClosed // then closeSocket has removed it, or found nothing to remove
	c.mu.Unlock()
	if k.stopped || closed || c.kaSlot > 0 {
		return
	}
	// The slot the last tick pinged: its next turn is len(slots) ticks away.
	slot := (k.next + len(k.slots) - 1) % len(k.slots)
	if k.slots[slot] == nil {
		k.slots[slot] = map[*conn][]byte{}
	}
	k.slots[slot][c] = frame
	c.kaSlot = slot + 1
	k.n++
	if !k.armed {
		k.armed = true
		if k.timer == nil {
			k.timer = time.AfterFunc(k.tick, k.ping)
		} else {
			k.timer.Reset(k.tick)
		}
	}
}

// remove stops c's keep-alives (it closed).
func (k *keepAlive) remove(c *conn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c.kaSlot == 0 {
		return
	}
	delete(k.slots[c.kaSlot-1], c)
	c.kaSlot = 0
	k.n--
}

// ping queues the keep-alive frames of one slot, then arms the next tick
// while any connection is left. A connection that no longer takes frames
// (closing) stays until it closes and is removed.
func (k *keepAlive) ping() {
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	for c, f := range k.slots[k.next] {
		k.conns = append(k.conns, c)
		k.frames = append(k.frames, f)
	}
	k.next = (k.next + 1) % len(k.slots)
	conns, frames := k.conns, k.frames
	k.mu.Unlock()

	for i, c := range conns {
		c.sendRaw(nil, frames[i])
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	clear(conns)
	clear(frames)
	k.conns, k.frames = conns[:0], frames[:0]
	switch {
	case k.stopped:
	case k.n > 0:
		k.timer.Reset(k.tick)
	default:
		k.armed = false
	}
}

// stop ends the schedule (the Server closed).
func (k *keepAlive) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	if k.timer != nil {
		k.timer.Stop()
	}
}

// registered is how many connections the slots hold (for tests).
func (k *keepAlive) registered() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, s := range k.slots {
		n += len(s)
	}
	return n
}
