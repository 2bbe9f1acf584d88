package wsconn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// SSE is gqlgen's SSE transport (graphql-sse, "distinct connections"
// mode) with the bounds a WebSocket has: a write deadline that cuts off a
// client that stops reading, and a cap on the request body. gqlgen itself
// sends the keep-alive comments (": ping", every KeepAlivePingInterval of
// silence) that stop proxies from closing an idle stream.
//
// Served through Implementation.SSE, a stream can be closed like a
// WebSocket — by Close with the request's context (a slow-consumer drop)
// or by CloseAll (shutdown). It then ends without "complete", with the
// code and reason as a comment: graphql-sse takes a stream that ends
// without "complete" for a broken connection and retries, where "complete"
// would end the subscription for good.
type SSE struct {
	transport.SSE
	// WriteTimeout bounds every write; when one passes, net/http closes the
	// connection, which ends the request's context and so the
	// subscription. Zero: no deadline.
	WriteTimeout time.Duration
	// ReadLimit caps the request body, bytes. Zero: no cap.
	ReadLimit int64
	// Deadline, if set, says when the stream of a request must end, and
	// why (a credential's expiry): the stream then ends with why as a
	// GraphQL error, in a "next" event before "complete", so the client
	// learns its code instead of seeing a normal end. Zero: never.
	Deadline func(ctx context.Context) (time.Time, error)

	im *Implementation // tracks open streams; nil: not closable
}

// SSE returns t with its streams tracked by im: CloseAll and Close end
// them too. Call it once, before serving.
func (im *Implementation) SSE(t SSE) SSE {
	t.im = im
	return t
}

// sseStream is one open SSE request, for Close and CloseAll.
type sseStream struct {
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the handler has returned
}

// closeWith ends the stream with a close of code and reason (the
// context's cause, which the writer turns into the stream's last words).
func (s *sseStream) closeWith(code int, reason string) {
	s.cancel(&CloseError{Code: code, Reason: reason})
}

type sseKey struct{}

var _ graphql.Transport = SSE{}

// Do implements graphql.Transport.
func (t SSE) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if t.ReadLimit > 0 {
		r.Body = http.MaxBytesReader(w, r.Body, t.ReadLimit)
	}
	sw := &sseWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: t.WriteTimeout}
	defer sw.end()
	ctx := r.Context()
	var deadlineCause error
	if t.Deadline != nil {
		if at, why := t.Deadline(ctx); !at.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadlineCause(ctx, at, why)
			defer cancel()
			deadlineCause = why
		}
	}
	if t.im != nil {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		s := &sseStream{cancel: cancel, done: make(chan struct{})}
		ctx = context.WithValue(ctx, sseKey{}, s)
		t.im.addStream(s)
		defer t.im.removeStream(s)
		defer cancel(nil)
	}
	sw.last = func() []byte { return lastWords(ctx, deadlineCause, exec) }
	t.SSE.Do(sw, r.WithContext(ctx), exec)
}

// lastWords is what replaces the "complete" that gqlgen ends a stream with
// when the stream did not end on its own: a close (a comment with its code
// and reason, and no "complete"), or the deadline (its cause as a GraphQL
// error, then "complete"). nil: the stream ended on its own.
func lastWords(ctx context.Context, deadlineCause error, exec graphql.GraphExecutor) []byte {
	if ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(ctx)
	var ce *CloseError
	switch {
	case errors.As(cause, &ce):
		return fmt.Appendf(nil, ": closed %d %s\n\n", ce.Code, oneLine.Replace(ce.Reason))
	case deadlineCause != nil && errors.Is(cause, deadlineCause):
		resp := exec.DispatchError(context.WithoutCancel(ctx), gqlerror.List{gqlerror.WrapIfUnwrapped(deadlineCause)})
		b, err := json.Marshal(resp)
		if err != nil {
			return nil
		}
		return append(append(append([]byte("event: next\ndata: "), b...), "\n\n"...), completeEvent...)
	}
	return nil
}

// oneLine keeps a comment on its line: SSE ends a line at CR or LF.
var oneLine = strings.NewReplacer("\r", " ", "\n", " ")

// completeEvent is the event gqlgen ends every stream with.
var completeEvent = []byte("event: complete\n\n")

var errStreamEnded = errors.New("wsconn: sse stream has ended")

// sseWriter bounds each write with a deadline and refuses writes once the
// request is over: gqlgen's keep-alive goroutine only stops when the
// request's context ends, which is after the handler has returned.
type sseWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	// last, if set, returns what to send instead of the stream's
	// "complete" (nil: the "complete").
	last func() []byte

	mu    sync.Mutex
	ended bool
}

func (w *sseWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *sseWriter) Write(p []byte) (n int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return 0, errStreamEnded
	}
	if w.last != nil && bytes.Equal(p, completeEvent) {
		if last := w.last(); last != nil {
			w.withDeadline(func() { _, err = w.ResponseWriter.Write(last) })
			return len(p), err
		}
	}
	w.withDeadline(func() { n, err = w.ResponseWriter.Write(p) })
	return n, err
}

// Flush implements http.Flusher, which gqlgen's SSE transport requires.
func (w *sseWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.withDeadline(func() { _ = w.rc.Flush() })
	}
}

// withDeadline runs write under the write deadline and clears it after,
// so that an idle stream, or a later request on the same connection, is
// not cut off by it.
func (w *sseWriter) withDeadline(write func()) {
	if w.timeout <= 0 {
		write()
		return
	}
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	write()
	_ = w.rc.SetWriteDeadline(time.Time{})
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *sseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *sseWriter) end() {
	w.mu.Lock()
	w.ended = true
	w.mu.Unlock()
}
