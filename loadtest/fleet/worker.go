package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/oshirase/oshirase/loadtest/hist"
	"github.com/oshirase/oshirase/loadtest/proto"
)

// Worker holds connections and counts what arrives on them.
type Worker struct {
	layout Layout
	kind   proto.Kind
	first  int // first subscription index held here

	mu     sync.Mutex
	conns  []*conn
	conns0 int // the layout number of conns[0]

	probed  []atomic.Bool // per held subscription
	closing atomic.Bool

	// Resume (ConnectSpec.Resume): per held subscription, the cursor of
	// the last notice (written by its connection's reader; read by a
	// reconnect once the readers have stopped), and the notices received
	// since the last reconnect.
	resume     bool
	cursors    []string
	counts     []atomic.Int32
	expect     int32
	caught     atomic.Int64
	caughtLast atomic.Int64
	extra      atomic.Int64
	// retry reopens a resuming connection the server closed while it
	// was catching up, as a real client would (set by connect).
	retry   func(c int) (*conn, error)
	retries atomic.Int64

	hist        hist.Hist
	received    atomic.Int64
	probes      atomic.Int64
	subErrors   atomic.Int64
	disconnects atomic.Int64
	unknown     atomic.Int64
	firstRecv   atomic.Int64
	lastRecv    atomic.Int64
	errMu       sync.Mutex
	lastErr     string
	wg          sync.WaitGroup
}

type conn struct {
	ws       *websocket.Conn
	subFirst int            // global index of its first subscription
	index    int            // the connection's number in the layout
	channels map[string]int // Centrifugo: channel -> global subscription index
}

var writePool = &sync.Pool{}

// Serve runs the command loop until stdin closes or "close" is done.
func Serve(in io.Reader, out io.Writer) error {
	w := &Worker{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var cmd Command
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			return fmt.Errorf("fleet: bad command: %w", err)
		}
		rep := w.do(cmd)
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("fleet: reply: %w", err)
		}
		if cmd.Op == "close" {
			return nil
		}
	}
	w.closeAll()
	return sc.Err()
}

func (w *Worker) do(cmd Command) Reply {
	switch cmd.Op {
	case "connect":
		if cmd.Connect == nil {
			return Reply{Err: "connect without spec"}
		}
		return w.connect(*cmd.Connect)
	case "unready":
		return Reply{Unready: w.unready()}
	case "disconnect":
		// Close every connection, keeping the cursors for a reconnect.
		w.closeAll()
		w.closing.Store(false)
		n := 0
		for _, c := range w.cursors {
			if c != "" {
				n++
			}
		}
		return Reply{Cursors: n}
	case "reconnect":
		if cmd.Connect == nil || !cmd.Connect.Resume || w.cursors == nil {
			return Reply{Err: "reconnect needs a resuming spec after a connect"}
		}
		w.expect = int32(cmd.Connect.Expect)
		w.counts = make([]atomic.Int32, len(w.cursors))
		w.caught.Store(0)
		w.caughtLast.Store(0)
		w.extra.Store(0)
		w.retries.Store(0)
		return w.connect(*cmd.Connect)
	case "reset":
		w.hist.Reset()
		for _, c := range []*atomic.Int64{&w.received, &w.probes, &w.subErrors, &w.unknown, &w.firstRecv, &w.lastRecv} {
			c.Store(0)
		}
		return Reply{}
	case "stats":
		s := w.hist.Snapshot()
		w.errMu.Lock()
		le := w.lastErr
		w.errMu.Unlock()
		return Reply{Caught: w.caught.Load(), CaughtLast: w.caughtLast.Load(), Extra: w.extra.Load(), Retries: w.retries.Load(),
			Received: w.received.Load(), Probes: w.probes.Load(), SubErrors: w.subErrors.Load(),
			Disconnects: w.disconnects.Load(), Unknown: w.unknown.Load(), LastRecv: w.lastRecv.Load(),
			FirstRecv: w.firstRecv.Load(), Hist: &s, FirstError: le}
	case "close":
		w.closeAll()
		return Reply{}
	}
	return Reply{Err: "unknown op " + cmd.Op}
}

func (w *Worker) note(err error) {
	w.errMu.Lock()
	if w.lastErr == "" {
		w.lastErr = err.Error()
	}
	w.errMu.Unlock()
}

func (w *Worker) connect(spec ConnectSpec) Reply {
	kind, err := proto.ParseKind(spec.Proto)
	if err != nil {
		return Reply{Err: err.Error()}
	}
	w.layout, w.kind = spec.Layout, kind
	w.first, _ = spec.SubsOf(spec.ConnFirst)
	_, lastSub := spec.SubsOf(spec.ConnLast - 1)
	w.probed = make([]atomic.Bool, max(lastSub-w.first, 0))
	w.conns = make([]*conn, spec.ConnLast-spec.ConnFirst)
	w.conns0 = spec.ConnFirst
	w.resume = spec.Resume
	if len(w.cursors) != len(w.probed) {
		w.cursors = make([]string, len(w.probed))
	}

	timeout := time.Duration(max(spec.TimeoutSec, 1)) * time.Second
	dialers := make([]*websocket.Dialer, max(spec.SrcIPs, 1))
	for i := range dialers {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}
		nd := &net.Dialer{Timeout: timeout, LocalAddr: local, Control: bindNoPort}
		if spec.SrcIPs <= 0 {
			nd.LocalAddr = nil
		}
		dialers[i] = &websocket.Dialer{
			NetDialContext:   nd.DialContext,
			HandshakeTimeout: timeout,
			ReadBufferSize:   1024,
			WriteBufferSize:  1024,
			WriteBufferPool:  writePool,
		}
		if sp := kind.Subprotocol(); sp != "" {
			dialers[i].Subprotocols = []string{sp}
		}
	}

	w.retry = func(c int) (*conn, error) { return w.open(dialers[c%len(dialers)], spec, kind, c, timeout) }
	start := time.Now()
	var next atomic.Int64
	next.Store(int64(spec.ConnFirst))
	var errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for g := 0; g < max(spec.Parallel, 1); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c := int(next.Add(1) - 1)
				if c >= spec.ConnLast {
					return
				}
				cn, err := w.open(dialers[c%len(dialers)], spec, kind, c, timeout)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				w.mu.Lock()
				w.conns[c-spec.ConnFirst] = cn
				w.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep := Reply{ConnectErrs: int(errs.Load()), ConnectSecs: time.Since(start).Seconds()}
	if fe, ok := firstErr.Load().(string); ok {
		rep.FirstError = fe
	}
	for _, c := range w.conns {
		if c != nil {
			rep.Conns++
			f, l := spec.SubsOf(c.subFirst / max(spec.SubsPerConn, 1))
			rep.Subs += l - f
		}
	}
	return rep
}

// open dials connection c, completes the handshake, subscribes, and
// starts its reader.
func (w *Worker) open(d *websocket.Dialer, spec ConnectSpec, kind proto.Kind, c int, timeout time.Duration) (*conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	first, last := spec.SubsOf(c)
	token := ""
	if spec.JWTSecret != "" {
		token = Token(spec.JWTSecret, spec.User(spec.UserOf(first)))
	}
	var hdr http.Header
	if token != "" && kind != proto.Centrifugo {
		hdr = http.Header{"Authorization": {"Bearer " + token}}
	}
	ws, resp, err := d.DialContext(ctx, spec.URL, hdr)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	fail := func(err error) (*conn, error) {
		ws.Close()
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	deadline := time.Now().Add(timeout)
	ws.SetWriteDeadline(deadline)
	ws.SetReadDeadline(deadline)
	if err := ws.WriteMessage(websocket.TextMessage, proto.InitFrame(kind, token)); err != nil {
		return fail(fmt.Errorf("init: %w", err))
	}
	if err := waitFor(ws, kind, proto.Ack, 1); err != nil {
		return fail(fmt.Errorf("ack: %w", err))
	}
	cn := &conn{ws: ws, subFirst: first, index: c}
	if kind == proto.Centrifugo {
		cn.channels = make(map[string]int, last-first)
	}
	for s := first; s < last; s++ {
		user := spec.User(spec.UserOf(s))
		ch := ""
		if kind == proto.Centrifugo {
			ch = channelOf(spec.ChannelFmt, user)
			cn.channels[ch] = s
		}
		// GraphQL ids are the global subscription index; Centrifugo command
		// ids must differ from the connect command's 1.
		frame := proto.SubscribeFrame(kind, s+2, user, ch)
		if spec.Resume {
			frame = proto.ResumeFrame(kind, s+2, user, w.cursors[s-w.first])
		}
		if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
			return fail(fmt.Errorf("subscribe: %w", err))
		}
	}
	if kind == proto.Centrifugo {
		// A subscribe reply means the broker subscription is in place.
		if err := waitFor(ws, kind, proto.SubOK, last-first); err != nil {
			return fail(fmt.Errorf("subscribe reply: %w", err))
		}
		for s := first; s < last; s++ {
			w.probed[s-w.first].Store(true)
		}
	}
	ws.SetReadDeadline(time.Time{})
	ws.SetWriteDeadline(time.Time{})
	w.wg.Add(1)
	go w.read(cn)
	return cn, nil
}

// reopen brings back a resuming connection the server closed during a
// storm: after its subscriptions' last cursors, retrying for a while.
func (w *Worker) reopen(c int) {
	defer w.wg.Done()
	for try := 0; try < 50 && !w.closing.Load(); try++ {
		time.Sleep(200 * time.Millisecond)
		w.retries.Add(1)
		cn, err := w.retry(c)
		if err != nil {
			continue
		}
		w.mu.Lock()
		if i := c - w.conns0; i >= 0 && i < len(w.conns) {
			w.conns[i] = cn
		}
		closing := w.closing.Load()
		w.mu.Unlock()
		if closing { // closeAll may have passed it by
			cn.ws.Close()
		}
		return
	}
}

// waitFor reads until n events of type want have arrived, answering pings.
func waitFor(ws *websocket.Conn, kind proto.Kind, want proto.EventType, n int) error {
	var err error
	for n > 0 && err == nil {
		_, msg, rerr := ws.ReadMessage()
		if rerr != nil {
			return rerr
		}
		proto.Parse(kind, msg, func(ev proto.Event) {
			switch ev.Type {
			case want:
				n--
			case proto.Ping:
				_ = ws.WriteMessage(websocket.TextMessage, proto.Pong(kind))
			case proto.Error:
				err = fmt.Errorf("server error: %.200s", ev.Raw)
			}
		})
	}
	return err
}

func (w *Worker) read(cn *conn) {
	defer w.wg.Done()
	for {
		_, msg, err := cn.ws.ReadMessage()
		if err != nil {
			if !w.closing.Load() {
				w.disconnects.Add(1)
				w.note(fmt.Errorf("disconnect: %w", err))
				if w.resume && w.expect > 0 {
					w.wg.Add(1)
					go w.reopen(cn.index)
				}
			}
			return
		}
		now := time.Now().UnixNano()
		proto.Parse(w.kind, msg, func(ev proto.Event) { w.handle(cn, ev, now) })
	}
}

func (w *Worker) handle(cn *conn, ev proto.Event, now int64) {
	switch ev.Type {
	case proto.Data:
		sent, probe, ok := proto.ReadText(ev.Text)
		if !ok {
			w.unknown.Add(1)
			return
		}
		s := ev.ID - 2
		if w.kind == proto.Centrifugo {
			s = cn.channels[string(ev.Channel)]
		}
		i := s - w.first
		if w.resume && len(ev.Cursor) > 0 && i >= 0 && i < len(w.cursors) {
			w.cursors[i] = string(ev.Cursor)
		}
		if !probe && w.expect > 0 && i >= 0 && i < len(w.counts) {
			switch n := w.counts[i].Add(1); {
			case n == w.expect:
				w.caught.Add(1)
				for {
					l := w.caughtLast.Load()
					if now <= l || w.caughtLast.CompareAndSwap(l, now) {
						break
					}
				}
			case n > w.expect:
				w.extra.Add(1)
			}
		}
		if probe {
			w.probes.Add(1)
			if i >= 0 && i < len(w.probed) {
				w.probed[i].Store(true)
			}
			return
		}
		w.hist.Record(now - sent)
		w.received.Add(1)
		w.firstRecv.CompareAndSwap(0, now)
		for {
			l := w.lastRecv.Load()
			if now <= l || w.lastRecv.CompareAndSwap(l, now) {
				break
			}
		}
	case proto.Ping:
		// Only this connection's reader writes once it runs, so no lock.
		cn.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_ = cn.ws.WriteMessage(websocket.TextMessage, proto.Pong(w.kind))
	case proto.Error, proto.Complete:
		w.subErrors.Add(1)
		w.note(errors.New("server: " + truncate(ev.Raw)))
	}
}

func truncate(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// unready lists users one of whose subscriptions held here has not yet
// seen a probe.
func (w *Worker) unready() []int {
	seen := map[int]bool{}
	var out []int
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.conns {
		if c == nil {
			continue
		}
		f, l := w.layout.SubsOf(c.subFirst / max(w.layout.SubsPerConn, 1))
		for s := f; s < l; s++ {
			if !w.probed[s-w.first].Load() {
				u := w.layout.UserOf(s)
				if !seen[u] {
					seen[u] = true
					out = append(out, u)
				}
			}
		}
	}
	return out
}

func (w *Worker) closeAll() {
	w.closing.Store(true)
	w.mu.Lock()
	conns := w.conns
	w.mu.Unlock()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	for _, c := range conns {
		if c != nil {
			_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(100*time.Millisecond))
			c.ws.Close()
		}
	}
	w.wg.Wait()
}
