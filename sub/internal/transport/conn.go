package transport

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/wire"
)

// connState is where a connection is in its life.
type connState uint8

const (
	stateOpen    connState = iota
	stateClosing           // a final frame is queued; nothing more is accepted
	stateClosed            // the socket is closed
)

// drainTimeout bounds how long a WebSocket close waits for the client's
// answering close frame, so that closing the TCP connection cannot reset
// our close frame away.
const drainTimeout = time.Second

// item is one queued frame: a notice for op (framed at flush time, from
// the shared payload) or, with op nil or raw set, bytes ready to write.
type item struct {
	op     *operation
	b      []byte
	raw    bool
	holes  int    // cursor holes in b
	cursor string // the subscription's cursor after this notice
	ts     int64  // a live notice's publish time (Unix ms), for the lag; 0: not observed
}

// conn is one socket the engine writes: a WebSocket or a hijacked SSE
// stream. Every frame goes through one queue bounded in bytes; whoever
// turns the queue from empty to not empty schedules a flush, and a flush
// takes everything queued and writes it in one syscall. Writes never run
// on the goroutine that queues (the Redis reader): a worker tries the
// write without blocking, and only a socket that cannot take it all at
// once gets a goroutine of its own, bounded by WRITE_TIMEOUT.
type conn struct {
	srv   *Server
	nc    net.Conn
	raw   syscall.RawConn // nil: every write takes the blocking path
	proto protocol

	// onClosed runs once, after the socket is closed: the session ends
	// its operations there.
	onClosed func()
	// release gives back the connection's admission (Config.Admit).
	release func()

	mu         sync.Mutex
	queue      []item
	spare      []item // the previous queue, reused
	pending    int    // bytes queued or being written
	flushing   bool   // a flush is scheduled or running
	state      connState
	readerDone bool // the reading goroutine has returned
	timers     []*time.Timer
	kaSlot     int // its keep-alive slot + 1, 0 for none; guarded by srv.ka.mu
	closeOnce  sync.Once
	reason     atomic.Uint32 // why it ends (a reason), the first cause recorded
}

func (s *Server) newConn(nc net.Conn, p protocol) *conn {
	c := &conn{srv: s, nc: nc, proto: p}
	if sc, ok := nc.(syscall.Conn); ok && canWriteNow {
		if rc, err := sc.SyscallConn(); err == nil {
			c.raw = rc
		}
	}
	return c
}

// sendData queues a notice for op with its cursor (holes of them to
// splice into payload): from the hub's Send, on the Redis reader's
// goroutine, or from a replay. ts is a live notice's publish time (Unix
// ms) for the delivery lag, 0 for one replayed from the history. It never blocks. Over a bound it closes the
// connection as a slow consumer and refuses; a replay (replay set) is
// bounded by WRITE_QUEUE_BYTES only, not QUEUE_SIZE, since it queues what
// was missed all at once.
func (c *conn) sendData(op *operation, payload []byte, holes int, cursor string, replay bool, ts int64) hub.Verdict {
	n := dataLen(c.proto, op.qid, payload, holes, len(c.srv.cfg.CursorHole), cursor)
	cfg := &c.srv.cfg
	c.mu.Lock()
	if c.state != stateOpen || op.done.Load() {
		c.mu.Unlock()
		return hub.Gone
	}
	var why string
	switch {
	case c.pending > 0 && c.pending+n > cfg.WriteQueueBytes:
		why = "slow consumer: more than WRITE_QUEUE_BYTES waiting to be sent"
	case op.waiting >= cfg.QueueSize && !replay:
		why = "slow consumer: more than QUEUE_SIZE notices waiting to be sent"
	}
	if why != "" {
		c.mu.Unlock()
		c.slow(why)
		return hub.Refused
	}
	c.queue = append(c.queue, item{op: op, b: payload, holes: holes, cursor: cursor, ts: ts})
	c.pending += n
	op.waiting++
	kick := !c.flushing
	c.flushing = true
	c.mu.Unlock()
	if kick {
		c.srv.schedule(c)
	}
	return hub.Sent
}

// sendRaw queues bytes ready to write (a protocol message) for op, which
// may be nil. It reports false when the connection no longer accepts
// frames. Protocol messages are few and small: they are not bounded.
func (c *conn) sendRaw(op *operation, b []byte) bool {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return false
	}
	c.queue = append(c.queue, item{op: op, b: b, raw: true})
	c.pending += len(b)
	kick := !c.flushing
	c.flushing = true
	c.mu.Unlock()
	if kick {
		c.srv.schedule(c)
	}
	return true
}

// finish queues the connection's last frame (a WebSocket close frame, an
// SSE event; nil for none) and stops accepting others; discard drops what
// is still queued first. The socket closes once the queue is written and,
// for a WebSocket, the client has answered the close (or drainTimeout
// passed). It reports whether this call ended the connection.
func (c *conn) finish(final []byte, discard bool) bool {
	c.setReason(finalReason(c.proto, final))
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return false
	}
	if discard {
		for _, it := range c.queue {
			c.pending -= c.size(it)
		}
		clear(c.queue)
		c.queue = c.queue[:0]
	}
	if final != nil {
		c.queue = append(c.queue, item{b: final, raw: true})
		c.pending += len(final)
	}
	c.state = stateClosing
	kick := !c.flushing && len(c.queue) > 0
	c.flushing = c.flushing || kick
	closeNow := !c.flushing && (c.proto == protoSSE || c.readerDone)
	c.mu.Unlock()
	// Whatever the peer does, the socket goes after this.
	c.after(c.srv.cfg.WriteTimeout+drainTimeout, c.closeSocket)
	if c.proto != protoSSE {
		_ = c.nc.SetReadDeadline(time.Now().Add(drainTimeout))
	}
	switch {
	case kick:
		c.srv.schedule(c)
	case closeNow:
		c.closeSocket()
	}
	return true
}

// slow closes the connection because its client does not read fast
// enough: the queue is dropped and the client told why, if it still reads.
// It runs inside the hub's delivery (under its index lock): with a final
// frame to write, finish never closes the socket, and so never reaches
// back into the hub, from here.
func (c *conn) slow(why string) {
	var final []byte
	if c.proto == protoSSE {
		final = sseFinal(errorResponse(why, errkind.CodeSlowConsumer), false)
	} else {
		final = closeFrame(CloseTryAgainLater, why)
	}
	c.setReason(reasonSlowConsumer)
	if c.finish(final, true) {
		n := c.srv.slowClosed.Add(1)
		c.srv.log.Warn("closing slow consumer", "reason", why, "slow_closed_total", n)
	}
}

// size is how many bytes it counts for in pending.
func (c *conn) size(it item) int {
	if it.raw {
		return len(it.b)
	}
	return dataLen(c.proto, it.op.qid, it.b, it.holes, len(c.srv.cfg.CursorHole), it.cursor)
}

func (c *conn) open() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateOpen
}

// readerExited is called when the reading goroutine returns with err: the
// peer closed, went silent past its deadline, or broke the protocol.
func (c *conn) readerExited(err error) {
	c.setReason(readReason(err))
	c.mu.Lock()
	c.readerDone = true
	closeNow := c.state == stateOpen || !c.flushing
	c.mu.Unlock()
	if closeNow {
		c.closeSocket()
	}
}

// closeSocket closes the socket at once and ends what ran on it.
func (c *conn) closeSocket() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.state = stateClosed
		clear(c.queue)
		c.queue, c.spare, c.pending = nil, nil, 0
		timers := c.timers
		c.timers = nil
		c.mu.Unlock()
		for _, t := range timers {
			t.Stop()
		}
		c.srv.ka.remove(c)
		_ = c.nc.Close()
		c.srv.forget(c)
		c.disconnected()
		if c.onClosed != nil {
			c.onClosed()
		}
		if c.release != nil {
			c.release()
		}
	})
}

// after runs f after d unless the connection closes first.
func (c *conn) after(d time.Duration, f func()) *time.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateClosed {
		return nil
	}
	t := time.AfterFunc(d, f)
	c.timers = append(c.timers, t)
	return t
}

// stopTimer stops t, one of after's, and forgets it.
func (c *conn) stopTimer(t *time.Timer) {
	t.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.timers, t); i >= 0 {
		c.timers = slices.Delete(c.timers, i, i+1)
	}
}

// keepAlive queues frame every KEEPALIVE_INTERVAL until the connection
// ends (keepalive.go).
func (c *conn) keepAlive(frame []byte) {
	c.srv.ka.add(c, frame)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func putBuf(bp *[]byte, b []byte) {
	if cap(b) > 256<<10 {
		return // a rare large batch: let it go
	}
	*bp = b[:0]
	bufPool.Put(bp)
}

// flush writes what is queued, batch after batch, until the queue is
// empty. Only one flush runs per connection (c.flushing).
func (c *conn) flush() {
	var written int // bytes of the previous batch, now on the wire
	var prev []item
	for {
		c.mu.Lock()
		c.pending -= written
		if prev != nil {
			clear(prev)
			c.spare = prev[:0]
		}
		if c.state == stateClosed {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		items := c.queue
		if len(items) == 0 {
			c.flushing = false
			closeNow := c.state == stateClosing && (c.proto == protoSSE || c.readerDone)
			c.mu.Unlock()
			if closeNow {
				c.closeSocket()
			}
			return
		}
		c.queue, c.spare = c.spare, nil
		for _, it := range items {
			if !it.raw {
				it.op.waiting--
			}
		}
		queued := c.pending
		c.mu.Unlock()
		c.srv.queueBytes.Observe(float64(queued))

		bp := bufPool.Get().(*[]byte)
		buf, size := (*bp)[:0], 0
		var now int64 // Unix µs, read once per batch for the lag
		for _, it := range items {
			size += c.size(it)
			if it.op != nil && it.op.dropped.Load() {
				continue // the client ended it: nothing more for its id
			}
			if it.raw {
				buf = append(buf, it.b...)
				continue
			}
			buf = appendData(buf, c.proto, it.op.qid, it.b, c.srv.cfg.CursorHole, it.holes, it.cursor)
			if it.ts > 0 {
				if now == 0 {
					now = time.Now().UnixMicro()
				}
				c.srv.lag.Observe(max(float64(now-it.ts*1000), 0) / 1e6)
			}
		}
		c.srv.frames.Add(int64(len(items)))
		prev, written = items, size
		if len(buf) == 0 {
			putBuf(bp, buf)
			continue
		}
		c.srv.writes.Add(1)
		n, err := c.writeNow(buf)
		if err != nil {
			putBuf(bp, buf)
			c.setReason(reasonWriteError)
			c.closeSocket()
			return
		}
		if n < len(buf) {
			c.mu.Lock()
			clear(prev)
			c.spare = prev[:0]
			c.mu.Unlock()
			go c.writeRest(bp, buf, n, size)
			return
		}
		putBuf(bp, buf)
	}
}

// writeRest writes what a socket could not take at once, blocking up to
// WRITE_TIMEOUT on a goroutine of its own, then goes on flushing.
func (c *conn) writeRest(bp *[]byte, buf []byte, off, size int) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	_, err := c.nc.Write(buf[off:])
	putBuf(bp, buf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.setReason(reasonWriteTimeout)
		}
		c.setReason(reasonWriteError)
		if errors.Is(err, os.ErrDeadlineExceeded) && c.open() {
			// A peer that stopped reading is a slow consumer too: counted
			// with those its queue bound closed.
			c.srv.writeTimeouts.Add(1)
			n := c.srv.slowClosed.Add(1)
			c.srv.log.Warn("cutting off a peer that stopped reading", "write_timeout", c.srv.cfg.WriteTimeout, "slow_closed_total", n)
		}
		c.closeSocket()
		return
	}
	_ = c.nc.SetWriteDeadline(time.Time{})
	c.mu.Lock()
	c.pending -= size
	c.mu.Unlock()
	c.flush()
}

// writeNow writes as much of b as the socket takes without blocking.
func (c *conn) writeNow(b []byte) (int, error) {
	if c.raw == nil {
		return 0, nil
	}
	return writeNonBlocking(c.raw, b)
}

// operation is one subscription or one-shot operation on a connection:
// the hub's sink for a subscription.
type operation struct {
	c   *conn
	id  string
	qid []byte          // id as a JSON string; nil on SSE
	ctx context.Context // the connection's values (the identity)

	// done: nothing more may be queued for it; dropped: what is queued is
	// not sent either (the client completed it, or its connection ended).
	done, dropped atomic.Bool
	// ended is closed when the operation ends (end), for what waits on
	// its behalf: a catch-up retrying its history read.
	ended   chan struct{}
	waiting int // notices queued and not yet taken by a flush; guarded by c.mu

	mu    sync.Mutex
	sub   *hub.Subscription
	shape Shape

	// The stream's cursor state (resume.go), guarded by rmu.
	chs      []wire.Channel
	rmu      sync.Mutex
	live     bool           // caught up: notices go out as they come
	buffered []liveNotice   // live notices that came while catching up
	vec      []bus.Position // per channel, the last notice sent; nil: no cursors
}

var _ hub.Sink = (*operation)(nil)

// attach records the hub subscription once Subscribe returned; an
// operation that ended meanwhile gives it back at once.
func (op *operation) attach(sub *hub.Subscription) {
	op.mu.Lock()
	if !op.done.Load() {
		op.sub = sub
		op.mu.Unlock()
		return
	}
	op.mu.Unlock()
	sub.Close()
}

// end stops the operation and gives back what it holds; drop also
// discards what is queued for it. Safe to call more than once.
func (op *operation) end(drop bool) {
	if drop {
		op.dropped.Store(true)
	}
	op.mu.Lock()
	if op.done.Swap(true) {
		op.mu.Unlock()
		return
	}
	sub, shape := op.sub, op.shape
	op.sub, op.shape = nil, nil
	op.mu.Unlock()
	if op.ended != nil {
		close(op.ended)
	}
	if sub != nil {
		sub.Close()
	}
	if shape != nil {
		shape.Release()
	}
}
