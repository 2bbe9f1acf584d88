// Package transport owns sub's subscription streams: graphql-transport-ws
// and the legacy graphql-ws subprotocol over gorilla/websocket, and SSE
// (graphql-sse, distinct connections mode). gqlgen parses and validates
// operations and executes queries; this package runs the streams.
//
// A connection costs one parked goroutine, which only reads; messages are
// handled on short-lived goroutines and keep-alives go out from one timer. A
// subscription costs no goroutine at all: the hub hands each notice, rendered
// once per selection shape, to the subscription (a hub.Sink), which splices
// it into its connection's write queue. The queue is bounded in bytes (a
// client over it is closed with 1013 and the reason); frames queued together
// go out in one write, made by a small pool of workers that never block on a
// socket (a socket that cannot take a write at once gets a goroutine of its
// own until it does, or until WRITE_TIMEOUT cuts it off).
package transport

import (
	"context"
	"encoding/json"
	"log/slog"
	"mime"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/logging"
	"github.com/oshirase/oshirase/service/metrics"
	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/wire"
)

// Close codes (RFC 6455 and graphql-ws PROTOCOL.md).
const (
	CloseNormal                = 1000
	CloseGoingAway             = 1001 // server shutting down: reconnect elsewhere
	CloseProtocolError         = 1002 // legacy graphql-ws: a broken message
	CloseInternalError         = 1011
	CloseTryAgainLater         = 1013 // slow consumer: reconnect and catch up
	CloseBadRequest            = 4400 // a message the protocol does not allow
	CloseUnauthorized          = 4401 // subscribe before connection_ack
	CloseForbidden             = 4403 // connection_init refused, or the token expired
	CloseInitTimeout           = 4408 // no connection_init in time
	CloseSubscriberExists      = 4409 // subscribe with an id already in use
	CloseTooManyInitialisation = 4429 // a second connection_init
	// CloseTooManyRequests refuses a connection_init over the user's
	// MAX_CONNECTIONS_PER_USER. graphql-ws clients treat 4429 as fatal:
	// they do not retry, and report the close to every sink's error.
	CloseTooManyRequests = 4429
)

// InitFunc authenticates a WebSocket at connection_init with the message's
// payload; ctx carries the upgrade request's values. It returns the
// connection's context (an identity in it); an error refuses the
// connection (4403).
type InitFunc func(ctx context.Context, payload map[string]any) (context.Context, error)

// Shape is a subscription's rendering: the hub renders each notice once
// per shape; Release gives back a subscription's hold on it.
type Shape interface {
	hub.Shape
	Release()
}

// Streams opens the stream a subscription operation's one root field asks
// for: the channels it reads, its shape and the cursor to resume after
// (nil: none). An error that is a
// *gqlerror.Error with a GRAPHQL_VALIDATION_FAILED code is reported as a
// validation error; any other is the resolver's.
type Streams interface {
	Open(ctx context.Context, opCtx *graphql.OperationContext, field graphql.CollectedField) ([]wire.Channel, Shape, *string, error)
}

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Schema and Exec (an executor of Schema, with the service's query
	// cache, introspection switch and error presenter) parse, validate and
	// run operations. Required.
	Schema graphql.ExecutableSchema
	Exec   *executor.Executor
	// Streams opens subscriptions; Hub carries their notices. Required.
	Streams Streams
	Hub     *hub.Hub
	// History gives subscriptions their cursors and replays what a
	// resuming one missed. Default: none (cursors are empty, and a
	// subscription with after fails with CURSOR_EXPIRED).
	History bus.History
	// CursorHole is what a rendered payload holds where each
	// subscription's cursor goes (graph.Notifications.CursorHole).
	CursorHole []byte
	// ConnContext picks what a WebSocket keeps of its upgrade request for
	// Init (a token from a header or cookie): the request itself is let go.
	// Default: nothing.
	ConnContext func(r *http.Request) context.Context
	// Admit decides, before a WebSocket upgrade or an SSE stream, whether
	// to serve r (connection limits); it answers a refused request itself.
	// An admitted request goes on with ctx as its context, and release runs
	// once when its connection ends, or at once if none is made. Default:
	// every request is admitted.
	Admit func(w http.ResponseWriter, r *http.Request) (ctx context.Context, release func(), ok bool)
	// Init authenticates WebSockets at connection_init. Default: every
	// connection is accepted. An error wrapping errkind.ErrRateLimited
	// closes the connection with 4429, any other with 4403.
	Init InitFunc
	// Expiry says when the credential in a connection's context expires
	// (zero: never); the stream is ended then. Default: never.
	Expiry func(ctx context.Context) time.Time
	// KeepAlive is the interval of graphql-transport-ws "ping", legacy
	// "ka" and SSE ": ping". Default: 10s.
	KeepAlive time.Duration
	// MissingPongOk keeps a graphql-transport-ws peer that answers no
	// ping: by default a peer silent for twice KeepAlive is cut off.
	MissingPongOk bool
	// InitTimeout is how long a WebSocket may wait before connection_init.
	// Default: 3s.
	InitTimeout time.Duration
	// TooLarge, when set, is told of every SSE request body refused with
	// 413 over ReadLimit (sub counts them with the POST bodies).
	TooLarge func()
	// ReadLimit caps a client message (WebSocket) or request body (SSE).
	// Default: 64 KiB.
	ReadLimit int64
	// WriteTimeout cuts off a peer that does not take a write within it.
	// Default: 5s.
	WriteTimeout time.Duration
	// WriteQueueBytes bounds what may wait to be written to one connection;
	// past it the client is closed as a slow consumer. Default: 1 MiB.
	WriteQueueBytes int
	// QueueSize bounds the notices waiting for one subscription. Default: 128.
	QueueSize int
	// MaxSubscriptions bounds the operations one WebSocket runs at once
	// (MAX_SUBSCRIPTIONS_PER_CONNECTION); one more gets an "error" with
	// TOO_MANY_SUBSCRIPTIONS. Default (0): no bound.
	MaxSubscriptions int
	// ReadBufferSize sizes each WebSocket's read buffer, held for the
	// connection's life; client messages are few, so it is small.
	// Default (and least): 257 bytes.
	ReadBufferSize int
	// Workers write queued frames. Default: GOMAXPROCS.
	Workers int
	// Logger. Default: slog.Default().
	Logger *slog.Logger
	// DeliveryLag observes, for each live notice written, the seconds from
	// its publish time (wire.Message.TS, Unix ms) to the socket write.
	// QueueBytes observes, at each write, the bytes its connection had
	// queued. Default: nothing is observed.
	DeliveryLag, QueueBytes metrics.Observer
}

// Stats are the transport's counters.
type Stats struct {
	Open          int64 // connections (WebSocket and SSE) open now
	SlowClosed    int64 // closed as slow consumers: over a queue bound (1013, or SSE's final event) or WriteTimeouts
	WriteTimeouts int64 // cut off because a write blocked past WriteTimeout
	Frames        int64 // frames written
	Writes        int64 // write calls made for them
	// TooManySubscriptions counts operations refused over MaxSubscriptions.
	TooManySubscriptions int64
	// MemoryReleases counts the times memory was given back to the OS
	// after a burst of connects and subscriptions (twice a burst).
	MemoryReleases int64
}

// Server serves subscription streams.
type Server struct {
	cfg  Config
	log  *slog.Logger
	root string // the schema's subscription type

	// Connections with frames to write, taken by the workers in chunks
	// (one lock per chunk, not per connection, in a large fan-out).
	readyMu sync.Mutex
	ready   []*conn
	head    int           // ready[head:] are waiting
	stopped bool          // guarded by readyMu
	wake    chan struct{} // a worker may take work
	workers sync.WaitGroup

	mu    sync.Mutex
	conns map[*conn]struct{}

	ka keepAlive

	burstMu      sync.Mutex
	burst        *time.Timer // armed while connects and subscriptions keep coming
	settled      *time.Timer // armed by a release, for what the burst set going
	sinceRelease int         // connects and subscriptions since memory was last given back; guarded by burstMu
	releases     atomic.Int64

	slowClosed, writeTimeouts, frames, writes atomic.Int64
	disconnects                               [numReasons]atomic.Int64
	lag, queueBytes                           metrics.Observer
	tooManySubs                               atomic.Int64
	tooManySubsLog                            logging.Throttle
}

// New returns a Server with its write workers running; Close stops them.
func New(cfg Config) *Server {
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 10 * time.Second
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = 3 * time.Second
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = 64 << 10
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.WriteQueueBytes <= 0 {
		cfg.WriteQueueBytes = 1 << 20
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 128
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = 257
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ConnContext == nil {
		cfg.ConnContext = func(*http.Request) context.Context { return context.Background() }
	}
	if cfg.Admit == nil {
		cfg.Admit = func(_ http.ResponseWriter, r *http.Request) (context.Context, func(), bool) {
			return r.Context(), func() {}, true
		}
	}
	if cfg.Expiry == nil {
		cfg.Expiry = func(context.Context) time.Time { return time.Time{} }
	}
	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "transport"),
		root:  "Subscription",
		wake:  make(chan struct{}, cfg.Workers),
		conns: map[*conn]struct{}{},
		lag:   metrics.Or(cfg.DeliveryLag),
		// one observe per write
		queueBytes: metrics.Or(cfg.QueueBytes),
		ka:         newKeepAlive(cfg.KeepAlive),
	}
	if t := cfg.Schema.Schema().Subscription; t != nil {
		s.root = t.Name
	}
	for range cfg.Workers {
		s.workers.Add(1)
		go s.work()
	}
	return s
}

// chunk is the most connections a worker takes at once.
const chunk = 64

func (s *Server) work() {
	defer s.workers.Done()
	var batch [chunk]*conn
	for {
		s.readyMu.Lock()
		waiting := len(s.ready) - s.head
		if waiting == 0 {
			stopped := s.stopped
			s.readyMu.Unlock()
			if stopped {
				return
			}
			<-s.wake
			continue
		}
		n := copy(batch[:], s.ready[s.head:])
		clear(s.ready[s.head : s.head+n])
		s.head += n
		if s.head == len(s.ready) {
			s.ready, s.head = s.ready[:0], 0
		} else if s.head > len(s.ready)/2 {
			m := copy(s.ready, s.ready[s.head:])
			clear(s.ready[m:])
			s.ready, s.head = s.ready[:m], 0
		}
		more := n < waiting
		s.readyMu.Unlock()
		if more {
			s.signal() // a large fan-out: another worker takes the next chunk
		}
		for i, c := range batch[:n] {
			c.flush()
			batch[i] = nil
		}
	}
}

func (s *Server) signal() {
	select {
	case s.wake <- struct{}{}:
	default: // every worker has a wake-up pending already
	}
}

// schedule hands c to the workers (after Close, to a goroutine of its own).
func (s *Server) schedule(c *conn) {
	s.readyMu.Lock()
	if s.stopped {
		s.readyMu.Unlock()
		go c.flush()
		return
	}
	s.ready = append(s.ready, c)
	first := len(s.ready)-s.head == 1
	s.readyMu.Unlock()
	if first {
		s.signal()
	}
}

// Handler serves WebSocket upgrades and SSE requests; every other request
// goes to next (gqlgen's POST handler).
func (s *Server) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Upgrade") != "":
			s.ServeWebSocket(w, r)
		case isSSE(r):
			s.ServeSSE(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// isSSE reports whether r asks for a GraphQL event stream (graphql-sse,
// distinct connections mode).
func isSSE(r *http.Request) bool {
	if r.Method != http.MethodPost || !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

func (s *Server) track(c *conn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.busy()
}

// Memory after a burst of connects and subscriptions. Most of what a
// handshake allocates (net/http's buffers, the request and its headers)
// is garbage once the socket is the engine's, and so is most of what
// starting a subscription allocates (parsing and validating its document,
// the bus's SUBSCRIBE rounds). After a burst that is most of the
// memory: Go collects garbage only when the heap has doubled and gives
// pages back to the OS slowly (at 100,000 subscriptions on 14,286
// connections, RSS stood at 680 MB seconds after the burst; 420 MB once
// given back). So once
// connects and subscriptions stop for burstQuiet after at least
// burstEvents of them, the transport collects and returns the memory at
// once (debug.FreeOSMemory). Subscriptions count as well as connects:
// with several on each connection, they go on after the last socket
// opened. What a burst sets going goes on for seconds after it (the first
// notices to its subscriptions, the bus's SUBSCRIBE confirmations and
// count writes: at 100,000 subscriptions the heap grew by 190 MB in the
// 1.6 s after the release), so the memory is given back once more
// burstSettle later.
const (
	burstEvents = 1000
	burstQuiet  = time.Second
	burstSettle = 5 * time.Second
)

// busy records a connect, or a subscription that went live (or failed).
func (s *Server) busy() {
	s.burstMu.Lock()
	defer s.burstMu.Unlock()
	if s.sinceRelease++; s.sinceRelease < burstEvents {
		return
	}
	if s.burst == nil {
		s.burst = time.AfterFunc(burstQuiet, s.releaseMemory)
	} else {
		s.burst.Reset(burstQuiet)
	}
}

func (s *Server) releaseMemory() {
	s.burstMu.Lock()
	s.sinceRelease = 0
	if s.settled == nil {
		s.settled = time.AfterFunc(burstSettle, s.giveBack)
	} else {
		s.settled.Reset(burstSettle)
	}
	s.burstMu.Unlock()
	s.giveBack()
}

func (s *Server) giveBack() {
	debug.FreeOSMemory()
	s.releases.Add(1)
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// CloseAll ends every connection: WebSockets with a close frame of code
// and reason (at shutdown 1001, on which clients reconnect and
// resubscribe), SSE streams without a "complete" event, so that their
// clients reconnect too. No subscription is completed.
func (s *Server) CloseAll(code int, reason string) {
	for _, c := range s.open() {
		c.end(code, reason)
	}
}

// CloseAllSpread ends every connection as CloseAll does, but one at a time,
// evenly spread over window in no set order, so that a fleet's clients do
// not all reconnect in the same second (a deploy's graceful drain). It
// returns when the last of those open at its start has been told to close;
// any opened meanwhile are ended then. A window of 0 is CloseAll.
func (s *Server) CloseAllSpread(code int, reason string, window time.Duration) {
	conns := s.open()
	if window > 0 && len(conns) > 1 {
		start := time.Now()
		step := window / time.Duration(len(conns))
		for i, c := range conns {
			// Deadlines from the start, not sleeps between closes: a late
			// wake-up catches up instead of stretching the window.
			if d := time.Until(start.Add(time.Duration(i) * step)); d > 0 {
				time.Sleep(d)
			}
			c.end(code, reason)
		}
	}
	s.CloseAll(code, reason)
}

// open lists the connections open now; map order is random, so the order
// differs every time.
func (s *Server) open() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// end closes c as CloseAll does: WebSockets with a close frame, SSE streams
// without "complete".
func (c *conn) end(code int, reason string) {
	if c.proto == protoSSE {
		c.finish(nil, false)
	} else {
		c.finish(closeFrame(code, reason), false)
	}
}

// Drain waits until every connection has closed, or timeout passed; it
// reports whether all did. After CloseAll, it lets the close frames and
// final events reach the clients before the process exits.
func (s *Server) Drain(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for s.Stats().Open > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// Close stops the write workers; call it after CloseAll. Writes still
// pending run on goroutines of their own.
func (s *Server) Close() {
	s.readyMu.Lock()
	if s.stopped {
		s.readyMu.Unlock()
		return
	}
	s.stopped = true
	s.readyMu.Unlock()
	s.ka.stop()
	for range s.cfg.Workers { // workers finish what is queued, then stop
		s.signal()
	}
	s.workers.Wait()
	s.burstMu.Lock()
	if s.burst != nil {
		s.burst.Stop()
	}
	if s.settled != nil {
		s.settled.Stop()
	}
	s.burstMu.Unlock()
}

// Stats returns the transport's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	open := len(s.conns)
	s.mu.Unlock()
	return Stats{
		Open:          int64(open),
		SlowClosed:    s.slowClosed.Load(),
		WriteTimeouts: s.writeTimeouts.Load(),
		Frames:        s.frames.Load(),
		Writes:        s.writes.Load(),

		TooManySubscriptions: s.tooManySubs.Load(),
		MemoryReleases:       s.releases.Load(),
	}
}

// prepare parses and validates one operation; for a subscription it also
// returns its one root field (more or fewer is a validation error: the
// single root field rule, applied after @include and @skip).
func (s *Server) prepare(ctx context.Context, params *graphql.RawParams) (*graphql.OperationContext, *graphql.CollectedField, gqlerror.List) {
	ctx = graphql.StartOperationTrace(ctx)
	params.ReadTime = graphql.TraceTiming{Start: graphql.Now(), End: graphql.Now()}
	opCtx, errs := s.cfg.Exec.CreateOperationContext(ctx, params)
	if errs != nil {
		return opCtx, nil, errs
	}
	if opCtx.Operation.Operation != ast.Subscription {
		return opCtx, nil, nil
	}
	fields := graphql.CollectFields(opCtx, opCtx.Operation.SelectionSet, []string{s.root})
	if len(fields) != 1 {
		err := gqlerror.ErrorPosf(opCtx.Operation.Position, "a subscription must select exactly one top level field, not %d", len(fields))
		errcode.Set(err, errcode.ValidationFailed)
		return opCtx, nil, gqlerror.List{err}
	}
	return opCtx, &fields[0], nil
}

// present runs errs through the executor's error presenter.
func (s *Server) present(ctx context.Context, opCtx *graphql.OperationContext, errs gqlerror.List) *graphql.Response {
	if opCtx != nil {
		ctx = graphql.WithOperationContext(ctx, opCtx)
	}
	return s.cfg.Exec.DispatchError(ctx, errs)
}

// fieldErrors turns an error from opening a stream into GraphQL errors: a
// validation error as it is, anything else at the field's path, for the
// presenter to code (BAD_USER_INPUT, FORBIDDEN, UNAVAILABLE, INTERNAL).
func fieldErrors(field *graphql.CollectedField, err error) gqlerror.List {
	if e, ok := err.(*gqlerror.Error); ok && e.Err == nil {
		return gqlerror.List{e}
	}
	return gqlerror.List{&gqlerror.Error{Err: err, Message: err.Error(), Path: fieldPath(field.Alias)}}
}

// isValidation reports whether errs are a request's own fault, found
// before execution (parse or validation).
func isValidation(errs gqlerror.List) bool {
	return errcode.GetErrorKind(errs) == errcode.KindProtocol
}

// runOnce executes a query or mutation and returns its responses (one,
// or more with @defer).
func (s *Server) runOnce(ctx context.Context, opCtx *graphql.OperationContext) []*graphql.Response {
	handle, ctx := s.cfg.Exec.DispatchOperation(ctx, opCtx)
	var out []*graphql.Response
	for {
		r := handle(ctx)
		if r == nil {
			return out
		}
		out = append(out, r)
	}
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // responses and errors marshal; keep the stream valid regardless
		return []byte(`{"errors":[{"message":"internal error","extensions":{"code":"` + errkind.CodeInternal + `"}}]}`)
	}
	return b
}

// errorResponse is a GraphQL response carrying one error with a code.
func errorResponse(msg, code string) []byte {
	return marshal(map[string]any{"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": code}}}})
}
