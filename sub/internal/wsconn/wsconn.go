// Package wsconn owns sub's streaming connections below GraphQL. It plugs
// gorilla/websocket into gqlgen's WebSocket transport, makes the
// graphql-transport-ws subprotocol follow its specification (close codes,
// message validation, operation ids), gives code deeper in a request
// (resolvers, the hub's drop callback) a way to close the request's
// WebSocket with a code and a reason, and bounds gqlgen's SSE transport
// the same way (write deadline, request size).
package wsconn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
)

// Config configures the adapter.
type Config struct {
	// CheckOrigin decides whether a browser Origin may connect. Default:
	// every origin.
	CheckOrigin func(r *http.Request) bool
	// WriteTimeout bounds every write; a peer that stops reading is cut off
	// when it passes. Default: 5s.
	WriteTimeout time.Duration
	// ReadBufferSize and WriteBufferSize size the I/O buffers. Write buffers
	// come from a pool shared by all connections and are held only during a
	// write. Default: 1024 and 4096.
	ReadBufferSize, WriteBufferSize int
}

// Implementation is a transport.WebsocketImplementation on gorilla/websocket.
type Implementation struct {
	cfg      Config
	upgrader websocket.Upgrader

	// Keep-alive intervals taken over from gqlgen by Transport; zero: none.
	keepAlive time.Duration // legacy graphql-ws "ka"
	pingPong  time.Duration // graphql-transport-ws "ping", and the read deadline

	mu      sync.Mutex
	conns   map[*Conn]struct{}
	streams map[*sseStream]struct{} // SSE requests served through SSE
}

var _ transport.WebsocketImplementation = (*Implementation)(nil)

// New returns an Implementation.
func New(cfg Config) *Implementation {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = 1024
	}
	if cfg.WriteBufferSize <= 0 {
		cfg.WriteBufferSize = 4096
	}
	check := cfg.CheckOrigin
	if check == nil {
		check = func(*http.Request) bool { return true }
	}
	return &Implementation{cfg: cfg, conns: map[*Conn]struct{}{}, streams: map[*sseStream]struct{}{}, upgrader: websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   cfg.ReadBufferSize,
		WriteBufferSize:  cfg.WriteBufferSize,
		WriteBufferPool:  &sync.Pool{},
		CheckOrigin:      check,
	}}
}

// Transport returns t served by this adapter, which takes over its
// keep-alive: gqlgen parks a goroutine per connection on a ticker for it,
// the adapter arms a timer. A graphql-transport-ws peer that sends nothing
// for twice PingPongInterval is cut off (dropped without a close frame:
// the client sees 1006), whatever MissingPongOk says.
// Call it once, before serving.
func (im *Implementation) Transport(t transport.Websocket) transport.Websocket {
	t.Implementation = im
	im.keepAlive, t.KeepAlivePingInterval = t.KeepAlivePingInterval, 0
	im.pingPong, t.PingPongInterval = t.PingPongInterval, 0
	return t
}

// subprotocols are gqlgen's, in its order of preference.
var subprotocols = []string{"graphql-ws", graphqlTransportWS}

// Middleware serves WebSocket upgrades off net/http's handler goroutine.
// gqlgen serves a socket inside the handler that accepted it, which keeps
// net/http's per-connection state (its buffered reader and writer, ~10
// KiB) and the handler's grown stack alive for the socket's lifetime.
// Instead Middleware upgrades here and lets the handler return; next runs
// on a goroutine of its own, with a request whose context keeps every
// value of the original (tokens, this package's Handle) but ends only when
// next returns, and whose upgrade Accept answers with the socket already
// open. Other requests pass through.
func (im *Implementation) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		conn, err := im.upgrade(w, r, subprotocols, nil)
		if err != nil {
			return // Upgrade has answered the request already
		}
		ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
		ctx = context.WithValue(ctx, connKey{}, conn)
		r = r.WithContext(ctx)
		go func() {
			defer cancel()
			next.ServeHTTP(noResponse{}, r)
			// gqlgen leaves the socket open on some early exits (an
			// unsupported subprotocol, an undecodable init payload).
			_ = conn.Close()
		}()
	})
}

// connKey finds the socket Middleware opened for a request: Accept hands
// it to gqlgen, and Close lets code deeper in the request (resolvers, the
// hub's drop callback) close it.
type connKey struct{}

// noResponse stands in for the hijacked ResponseWriter.
type noResponse struct{}

func (noResponse) Header() http.Header         { return http.Header{} }
func (noResponse) Write(b []byte) (int, error) { return len(b), nil }
func (noResponse) WriteHeader(int)             {}

// Accept implements transport.WebsocketImplementation. A request that came
// through Middleware is upgraded already.
func (im *Implementation) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	if c, ok := r.Context().Value(connKey{}).(*Conn); ok && c.accepted.CompareAndSwap(false, true) {
		return c, nil
	}
	conn, err := im.upgrade(w, r, opts.Subprotocols, opts.ResponseHeader)
	if err != nil {
		return nil, err // Upgrade has answered the request already
	}
	conn.accepted.Store(true)
	return conn, nil
}

func (im *Implementation) upgrade(w http.ResponseWriter, r *http.Request, protocols []string, header http.Header) (*Conn, error) {
	up := im.upgrader
	up.Subprotocols = slices.Clone(protocols)
	c, err := up.Upgrade(w, r, header)
	if err != nil {
		return nil, err
	}
	conn := &Conn{c: c, writeTimeout: im.cfg.WriteTimeout, im: im, done: make(chan struct{})}
	if c.Subprotocol() == graphqlTransportWS {
		conn.tws = newSession()
	}
	im.mu.Lock()
	im.conns[conn] = struct{}{}
	im.mu.Unlock()
	return conn, nil
}

// graphqlTransportWS is the subprotocol of the graphql-ws library; the
// legacy "graphql-ws" subprotocol keeps gqlgen's own behaviour.
const graphqlTransportWS = "graphql-transport-ws"

// drainTimeout bounds how long a close waits for the client's answering
// close frame before the socket is closed.
const drainTimeout = time.Second

// Conn adapts a gorilla connection to transport.WebsocketConn. gqlgen
// serialises its writes; CloseWith may be called from anywhere.
type Conn struct {
	im           *Implementation
	c            *websocket.Conn
	writeTimeout time.Duration
	closeOnce    sync.Once
	tws          *session // nil unless the subprotocol is graphql-transport-ws
	wmu          sync.Mutex
	closing      atomic.Bool // this package sent a close frame: nothing may follow it
	accepted     atomic.Bool
	readDeadline atomic.Bool // the peer must send something every 2×pingPong

	tmu   sync.Mutex  // guards timer and ended
	timer *time.Timer // keep-alive, armed at connection_ack
	ended bool

	done chan struct{} // closed by Close
}

var (
	_ transport.WebsocketConn        = (*Conn)(nil)
	_ transport.WebsocketReadLimiter = (*Conn)(nil)
)

// NextReader implements transport.WebsocketConn. On graphql-transport-ws
// it reads whole messages and hands gqlgen only valid ones, in the form
// the session chose; a violation closes the socket with its code.
func (c *Conn) NextReader() (int, io.Reader, error) {
	for {
		mt, r, err := c.c.NextReader()
		if err == nil && c.readDeadline.Load() && !c.closing.Load() {
			_ = c.c.SetReadDeadline(time.Now().Add(2 * c.im.pingPong))
		}
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() && c.readDeadline.Load() {
			// Silent for twice the ping interval: the peer is presumed
			// gone, and is dropped without a close handshake, as
			// graphql-ws's own server terminates it. Closing here, before
			// gqlgen's close, keeps that the same every time.
			_ = c.Close()
			return mt, nil, err
		}
		if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseNoStatusReceived) {
			return mt, nil, transport.ErrWebsocketClosed
		}
		if err != nil || c.tws == nil {
			return mt, r, err
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return mt, nil, err
		}
		v := c.tws.inbound(data)
		if v.close != nil {
			c.closeProtocol(v.close)
			return mt, nil, v.close
		}
		if v.reply != nil {
			if err := c.write(v.reply); err != nil {
				return mt, nil, err
			}
		}
		if v.forward != nil {
			return websocket.TextMessage, bytes.NewReader(v.forward), nil
		}
	}
}

// closeProtocol sends the close a protocol violation calls for, then reads
// (and ignores) what the client still sends until its answering close, so
// that closing the TCP connection cannot reset the close frame away.
func (c *Conn) closeProtocol(e *CloseError) {
	c.closing.Store(true)
	_ = c.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(e.Code, truncate(e.Reason)), time.Now().Add(c.writeTimeout))
	_ = c.c.SetReadDeadline(time.Now().Add(drainTimeout))
	for {
		if _, _, err := c.c.NextReader(); err != nil {
			return
		}
	}
}

// WriteJSON implements transport.WebsocketConn. A write that fails (the
// peer stopped reading past the deadline, or went away) closes the socket,
// which ends the read loop and with it every subscription of the connection.
func (c *Conn) WriteJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ack := bytes.HasSuffix(data, ackSuffix)
	if c.tws != nil {
		if data, err = c.tws.outbound(data); err != nil || data == nil {
			return err
		}
	}
	if err := c.write(data); err != nil {
		return err
	}
	if ack {
		c.startKeepAlive()
	}
	return nil
}

// ackSuffix ends gqlgen's connection_ack: its messages are structs
// {Payload, ID, Type}, encoded in that order.
var ackSuffix = []byte(`"type":"connection_ack"}`)

var (
	pingFrame = []byte(`{"type":"ping"}`)
	kaFrame   = []byte(`{"type":"ka"}`)
)

// startKeepAlive arms the keep-alive timer once the connection is
// acknowledged, as gqlgen starts its own; on graphql-transport-ws the
// peer's silence is bounded from then on.
func (c *Conn) startKeepAlive() {
	interval, frame := c.im.keepAlive, kaFrame
	if c.tws != nil {
		interval, frame = c.im.pingPong, pingFrame
		if interval > 0 {
			_ = c.c.SetReadDeadline(time.Now().Add(2 * interval))
			c.readDeadline.Store(true)
		}
	}
	if interval <= 0 {
		return
	}
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if c.ended || c.timer != nil {
		return
	}
	var tick func()
	tick = func() {
		if c.write(frame) != nil {
			return
		}
		c.tmu.Lock()
		if !c.ended {
			c.timer.Reset(interval)
		}
		c.tmu.Unlock()
	}
	c.timer = time.AfterFunc(interval, tick)
}

func (c *Conn) write(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing.Load() {
		return websocket.ErrCloseSent
	}
	_ = c.c.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	if err := c.c.WriteMessage(websocket.TextMessage, data); err != nil {
		_ = c.Close()
		return err
	}
	return nil
}

// WriteClose implements transport.WebsocketConn. On graphql-transport-ws
// gqlgen's code is mapped to the one the protocol specifies.
func (c *Conn) WriteClose(code int, reason string) error {
	if c.tws != nil {
		code, reason = c.tws.closeCode(code, reason)
	}
	return c.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, truncate(reason)), time.Now().Add(c.writeTimeout))
}

// CloseWith ends the connection with code and reason: it sends the close
// frame, after which nothing else is sent (no "complete" can follow, which
// would tell the client its subscription is finished), and closes the
// socket once the client has answered with its own close frame — the read
// loop sees it and ends the connection — or after drainTimeout. Closing at
// once could reset the connection before the client has read the close
// frame, and the client would see 1006 instead of the code. It returns
// without waiting.
func (c *Conn) CloseWith(code int, reason string) {
	if c.closing.Swap(true) {
		return // a close frame went out already
	}
	_ = c.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, truncate(reason)), time.Now().Add(drainTimeout))
	_ = c.c.SetReadDeadline(time.Now().Add(drainTimeout))
	// The read loop normally ends the connection; this bounds it if the
	// peer neither answers nor lets the deadline fire.
	time.AfterFunc(2*drainTimeout, func() { _ = c.Close() })
}

// Close implements transport.WebsocketConn: it closes the socket at once.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.tmu.Lock()
		c.ended = true
		if c.timer != nil {
			c.timer.Stop()
		}
		c.tmu.Unlock()
		err = c.c.Close()
		c.im.mu.Lock()
		delete(c.im.conns, c)
		c.im.mu.Unlock()
		close(c.done)
	})
	return err
}

// Open returns how many connections are open.
func (im *Implementation) Open() int {
	im.mu.Lock()
	defer im.mu.Unlock()
	return len(im.conns)
}

// CloseAll closes every open connection — WebSockets (see CloseWith) and
// SSE streams — with code and reason, all at once, and returns when every
// one is closed. At shutdown, 1001 "going away" tells clients to
// reconnect, to another instance, and resubscribe: it must run before
// anything ends the subscriptions themselves, which would send "complete"
// first.
func (im *Implementation) CloseAll(code int, reason string) {
	im.mu.Lock()
	conns := make([]*Conn, 0, len(im.conns))
	for c := range im.conns {
		conns = append(conns, c)
	}
	streams := make([]*sseStream, 0, len(im.streams))
	for s := range im.streams {
		streams = append(streams, s)
	}
	im.mu.Unlock()
	for _, c := range conns {
		// Concurrently: a peer that stopped reading holds its close frame
		// for up to drainTimeout, and must not hold up the others.
		go c.CloseWith(code, reason)
	}
	for _, s := range streams {
		s.closeWith(code, reason)
	}
	for _, c := range conns {
		<-c.done
	}
	for _, s := range streams {
		<-s.done
	}
}

func (im *Implementation) addStream(s *sseStream) {
	im.mu.Lock()
	im.streams[s] = struct{}{}
	im.mu.Unlock()
}

func (im *Implementation) removeStream(s *sseStream) {
	im.mu.Lock()
	delete(im.streams, s)
	im.mu.Unlock()
	close(s.done)
}

// Subprotocol implements transport.WebsocketConn.
func (c *Conn) Subprotocol() string { return c.c.Subprotocol() }

// SetReadLimit implements transport.WebsocketReadLimiter.
func (c *Conn) SetReadLimit(n int64) { c.c.SetReadLimit(n) }

// truncate keeps a close reason within the 123 bytes a close frame allows.
func truncate(s string) string {
	if len(s) <= 123 {
		return s
	}
	return s[:120] + "..."
}

// ErrNoConn is returned by Close when ctx belongs to no WebSocket and no
// tracked SSE stream.
var ErrNoConn = errors.New("wsconn: no websocket or sse stream in this context")

// Close closes the WebSocket or SSE stream of the request that ctx belongs
// to, with code and reason.
func Close(ctx context.Context, code int, reason string) error {
	if c, ok := ctx.Value(connKey{}).(*Conn); ok {
		c.CloseWith(code, reason)
		return nil
	}
	if s, ok := ctx.Value(sseKey{}).(*sseStream); ok {
		s.closeWith(code, reason)
		return nil
	}
	return ErrNoConn
}
