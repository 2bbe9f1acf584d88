package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/sub/internal/cursor"
)

// wsSession is one WebSocket: the protocol state both subprotocols share.
type wsSession struct {
	srv *Server
	c   *conn
	ws  *websocket.Conn
	br  *bufio.Reader // gorilla reads through it; Buffered says whether a message waits

	mu        sync.Mutex
	ctx       context.Context // what ConnContext kept of the upgrade request; after init, the identity
	initSeen  bool
	initTimer *time.Timer // stopped and forgotten at connection_init
	acked     bool
	silence   time.Duration // cut the peer off after this long without a message (0: never)
	ops       map[string]*operation
}

// writePool keeps gorilla from giving each connection a write buffer: it
// never writes a data frame (the engine frames those itself), and the
// control frames it writes build their own small buffers.
var writePool = &sync.Pool{}

// ServeWebSocket upgrades r and serves it; the handler returns at once
// (net/http's per-connection buffers and the handler's stack are released)
// and the socket lives on one parked reading goroutine.
func (s *Server) ServeWebSocket(w http.ResponseWriter, r *http.Request) {
	ctx, release, ok := s.cfg.Admit(w, r)
	if !ok {
		return
	}
	r = r.WithContext(ctx)
	hj := &hijacker{ResponseWriter: w, size: s.cfg.ReadBufferSize}
	up := websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		WriteBufferPool:  writePool, // and no ReadBufferSize: gorilla reads through hj.br
		Subprotocols:     []string{subprotocolLegacy, subprotocolTransport},
		// The origin allowlist answers before this handler runs.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	ws, err := up.Upgrade(hj, r, nil)
	if err != nil {
		release()
		return // Upgrade has answered the request
	}
	proto := protoLegacyWS // gqlgen's choice for a client naming no subprotocol
	if ws.Subprotocol() == subprotocolTransport {
		proto = protoTransportWS
	}
	c := s.newConn(hj.nc.Conn, proto)
	c.release = release
	sess := &wsSession{srv: s, c: c, ws: ws, br: hj.br, ctx: s.cfg.ConnContext(r), ops: map[string]*operation{}}
	c.onClosed = sess.closed
	hj.nc.owner.Store(c)
	ws.SetReadLimit(s.cfg.ReadLimit)
	s.track(c)
	go sess.read()
}

// hijacker hands gorilla a socket whose writes the engine takes over once
// the handshake is done, and a small read buffer of the engine's (gorilla
// reuses a hijacked reader of more than 256 bytes), so that the engine can
// tell whether a message is waiting without reading the socket.
type hijacker struct {
	http.ResponseWriter
	size int
	nc   *sharedConn
	br   *bufio.Reader
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.nc = &sharedConn{Conn: nc}
	if brw.Reader.Buffered() > 0 {
		return h.nc, brw, nil // gorilla refuses a client that sent data before the handshake
	}
	h.br = bufio.NewReaderSize(h.nc, max(h.size, 257))
	return h.nc, bufio.NewReadWriter(h.br, brw.Writer), nil
}

// sharedConn is the socket as gorilla sees it. Gorilla writes the
// handshake itself; after that it only writes control frames (a pong, the
// answer to a close, the close for a broken frame or an oversized
// message), and those go through the engine's queue, so that one flush at
// a time writes to the socket.
type sharedConn struct {
	net.Conn
	owner atomic.Pointer[conn]
}

func (s *sharedConn) Write(p []byte) (int, error) {
	c := s.owner.Load()
	if c == nil {
		return s.Conn.Write(p)
	}
	b := bytes.Clone(p)
	if len(b) > 0 && b[0]&0x0f == opClose {
		c.setReason(echoReason(b))
		c.finish(b, false)
	} else {
		c.sendRaw(nil, b)
	}
	return len(p), nil
}

func (s *sharedConn) SetWriteDeadline(t time.Time) error {
	if s.owner.Load() != nil {
		return nil // the engine bounds its own writes
	}
	return s.Conn.SetWriteDeadline(t)
}

// read is the connection's one long-lived goroutine. It waits for the
// socket to have something on a shallow stack (a one-byte peek), then lets
// a short-lived goroutine read the waiting messages with gorilla and handle
// them, in order, and waits for it: so the stack that stays parked while the
// connection idles never grows.
func (w *wsSession) read() {
	var err error
	defer func() { w.c.readerExited(err) }()
	w.initTimer = w.c.after(w.srv.cfg.InitTimeout, w.initTimedOut)
	done := make(chan error, 1)
	for {
		if _, err = w.br.Peek(1); err != nil {
			return
		}
		go func() { done <- w.readMessages() }()
		if err = <-done; err != nil {
			return
		}
	}
}

// readMessages reads and handles messages while some are buffered; an
// error ends the connection's reading. (A WebSocket control frame alone
// keeps it waiting for a data frame: browsers send none.)
func (w *wsSession) readMessages() error {
	for {
		_, r, err := w.ws.NextReader()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		w.mu.Lock()
		silence := w.silence
		w.mu.Unlock()
		if w.c.open() { // else: draining until the peer answers our close
			if silence > 0 {
				_ = w.c.nc.SetReadDeadline(time.Now().Add(silence))
			}
			w.handle(data)
		}
		if w.br.Buffered() == 0 {
			return nil
		}
	}
}

func (w *wsSession) handle(data []byte) {
	defer func() {
		if r := recover(); r != nil {
			w.srv.log.Error("panic while handling a websocket message", "panic", r)
			w.close(CloseInternalError, "internal error")
		}
	}()
	if w.c.proto == protoLegacyWS {
		w.handleLegacy(data)
	} else {
		w.handleTransport(data)
	}
}

// close ends the connection with a close frame after what is queued.
// finish counts the disconnect under what the close code says, unless a
// cause was recorded first.
func (w *wsSession) close(code int, reason string) {
	w.c.finish(closeFrame(code, reason), false)
}

func (w *wsSession) send(op *operation, typ string, payload []byte) {
	var qid []byte
	if op != nil {
		qid = op.qid
	}
	w.c.sendRaw(op, textFrame(message(typ, qid, payload)))
}

// sawInit records a connection_init and reports whether one came before;
// the first one stops the init timeout.
func (w *wsSession) sawInit() bool {
	w.mu.Lock()
	seen, t := w.initSeen, w.initTimer
	w.initSeen, w.initTimer = true, nil
	w.mu.Unlock()
	if t != nil {
		w.c.stopTimer(t)
	}
	return seen
}

func (w *wsSession) initTimedOut() {
	w.mu.Lock()
	seen := w.initSeen
	w.mu.Unlock()
	if seen {
		return
	}
	w.c.setReason(reasonInitTimeout)
	if w.c.proto == protoLegacyWS {
		w.close(CloseProtocolError, "connection initialisation timeout")
	} else {
		w.close(CloseInitTimeout, "Connection initialisation timeout")
	}
}

// init authenticates the connection and acknowledges it, or refuses it
// with 4403 (legacy clients get a connection_error first).
func (w *wsSession) init(payload json.RawMessage) {
	var p map[string]any
	if len(payload) > 0 && json.Unmarshal(payload, &p) != nil {
		w.send(nil, "connection_error", marshal(gqlerror.Errorf("invalid json")))
		w.close(CloseProtocolError, "decoding error")
		return
	}
	w.mu.Lock()
	ctx := w.ctx
	w.mu.Unlock()
	if init := w.srv.cfg.Init; init != nil {
		var err error
		if ctx, err = init(ctx, p); err != nil {
			if w.c.proto == protoLegacyWS {
				w.send(nil, "connection_error", marshal(gqlerror.Errorf("%s", err.Error())))
			}
			if errors.Is(err, errkind.ErrRateLimited) {
				w.c.setReason(reasonLimit) // the code alone reads as a second connection_init
				w.close(CloseTooManyRequests, "Too many requests")
			} else {
				w.close(CloseForbidden, "Forbidden")
			}
			return
		}
	}
	cfg := &w.srv.cfg
	w.mu.Lock()
	w.ctx = ctx
	w.acked = true
	if w.c.proto == protoTransportWS && !cfg.MissingPongOk {
		w.silence = 2 * cfg.KeepAlive
	}
	w.mu.Unlock()
	w.send(nil, "connection_ack", nil)
	if w.c.proto == protoLegacyWS {
		w.send(nil, "ka", nil)
		w.c.keepAlive(textFrame(message("ka", nil, nil)))
	} else {
		if w.silence > 0 {
			_ = w.c.nc.SetReadDeadline(time.Now().Add(w.silence))
		}
		w.c.keepAlive(textFrame(message("ping", nil, nil)))
	}
	if exp := cfg.Expiry(ctx); !exp.IsZero() {
		w.c.after(time.Until(exp), func() {
			w.c.setReason(reasonAuthExpired)
			w.close(CloseForbidden, "Forbidden: token expired")
		})
	}
}

// start runs one operation the client sent (subscribe / start): params
// is its payload when already decoded (parseFast), else nil.
func (w *wsSession) start(id string, payload json.RawMessage, params *graphql.RawParams) {
	w.mu.Lock()
	old := w.ops[id] // legacy only: a restarted id replaces its operation
	ctx := w.ctx
	op := &operation{c: w.c, id: id, qid: marshal(id), ctx: ctx, ended: make(chan struct{})}
	full := old == nil && w.srv.cfg.MaxSubscriptions > 0 && len(w.ops) >= w.srv.cfg.MaxSubscriptions
	if !full {
		w.ops[id] = op
	}
	w.mu.Unlock()
	if full {
		w.srv.tooManySubscriptions(op)
		w.fail(op, gqlerror.List{tooManySubscriptions(w.srv.cfg.MaxSubscriptions)}, true)
		return
	}
	if old != nil {
		old.end(true)
	}

	if params == nil {
		var err error
		if params, err = gqlserve.DecodeParams(payload); err != nil {
			w.fail(op, gqlerror.List{gqlerror.Errorf("invalid json")}, true)
			return
		}
	}
	opCtx, field, errs := w.srv.prepare(ctx, params)
	if errs != nil {
		w.fail(op, w.srv.present(ctx, opCtx, errs).Errors, isValidation(errs))
		return
	}
	if field == nil { // a query or mutation: executed once
		for _, r := range w.srv.runOnce(ctx, opCtx) {
			w.send(op, w.nextType(), marshal(r))
		}
		w.finishOp(op, true)
		return
	}
	chs, shape, afterText, err := w.srv.cfg.Streams.Open(ctx, opCtx, *field)
	var after *cursor.Cursor
	if err == nil {
		if after, err = w.srv.decodeAfter(afterText, chs); err != nil {
			shape.Release()
		}
	}
	if err != nil {
		errs := fieldErrors(field, err)
		w.fail(op, w.srv.present(ctx, opCtx, errs).Errors, isValidation(errs))
		return
	}
	op.mu.Lock()
	op.shape = shape
	op.mu.Unlock()
	alias := field.Alias
	go w.srv.subscribe(op, chs, shape, after, alias, func(errs gqlerror.List) { w.fail(op, errs, false) })
}

func (w *wsSession) nextType() string {
	if w.c.proto == protoLegacyWS {
		return "data"
	}
	return "next"
}

// fail reports errors for op and ends it. A request that is invalid gets
// "error" (on graphql-transport-ws nothing follows it); one the resolver
// refused gets its result, with the errors, then "complete" — as
// graphql-ws's reference server does.
func (w *wsSession) fail(op *operation, errs gqlerror.List, validation bool) {
	if validation {
		w.send(op, "error", marshal(errs))
		w.finishOp(op, w.c.proto == protoLegacyWS)
		return
	}
	w.send(op, w.nextType(), marshal(responseWithErrors(errs)))
	w.finishOp(op, true)
}

// finishOp ends op from the server's side, after what is queued for it,
// with "complete" if asked.
func (w *wsSession) finishOp(op *operation, complete bool) {
	w.mu.Lock()
	if w.ops[op.id] == op {
		delete(w.ops, op.id)
	}
	w.mu.Unlock()
	if complete {
		w.send(op, "complete", nil)
	}
	op.end(false)
}

// complete ends the client's operation id: nothing more is sent for it.
func (w *wsSession) complete(id string) {
	w.mu.Lock()
	op := w.ops[id]
	delete(w.ops, id)
	w.mu.Unlock()
	if op != nil {
		op.end(true)
	}
}

// closed runs once the socket is closed: every operation ends, none is
// completed (a client that did not end a subscription resubscribes after
// it reconnects).
func (w *wsSession) closed() {
	w.mu.Lock()
	ops := w.ops
	w.ops = map[string]*operation{}
	w.mu.Unlock()
	for _, op := range ops {
		op.end(true)
	}
}

// tooManySubscriptions is the error for an operation over
// MAX_SUBSCRIPTIONS_PER_CONNECTION.
func tooManySubscriptions(max int) *gqlerror.Error {
	e := gqlerror.Errorf("this connection runs %d operations already (MAX_SUBSCRIPTIONS_PER_CONNECTION); complete one first", max)
	e.Extensions = map[string]any{"code": errkind.CodeTooManySubscriptions}
	return e
}

// tooManySubscriptions counts and logs (at most once a second) an
// operation refused over MAX_SUBSCRIPTIONS_PER_CONNECTION.
func (s *Server) tooManySubscriptions(op *operation) {
	s.tooManySubs.Add(1)
	if ok, held := s.tooManySubsLog.Allow(); ok {
		s.log.Warn("subscription refused: MAX_SUBSCRIPTIONS_PER_CONNECTION reached", "reason", "max_subscriptions_per_connection", "limit", s.cfg.MaxSubscriptions, "not_logged_since_last", held)
	}
}
