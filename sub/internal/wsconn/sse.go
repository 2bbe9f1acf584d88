package wsconn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
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
}

var _ graphql.Transport = SSE{}

// Do implements graphql.Transport.
func (t SSE) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if t.ReadLimit > 0 {
		r.Body = http.MaxBytesReader(w, r.Body, t.ReadLimit)
	}
	sw := &sseWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: t.WriteTimeout}
	defer sw.end()
	if t.Deadline != nil {
		if at, why := t.Deadline(r.Context()); !at.IsZero() {
			ctx, cancel := context.WithDeadlineCause(r.Context(), at, why)
			defer cancel()
			r = r.WithContext(ctx)
			sw.last = func() []byte {
				if ctx.Err() == nil || !errors.Is(context.Cause(ctx), why) {
					return nil
				}
				resp := exec.DispatchError(context.WithoutCancel(ctx), gqlerror.List{gqlerror.WrapIfUnwrapped(why)})
				b, err := json.Marshal(resp)
				if err != nil {
					return nil
				}
				return b
			}
		}
	}
	t.SSE.Do(sw, r, exec)
}

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
	// last, if set, returns a GraphQL response to send before the stream's
	// "complete" (nil: none).
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
		if resp := w.last(); resp != nil {
			p = append(append(append([]byte("event: next\ndata: "), resp...), "\n\n"...), p...)
			w.withDeadline(func() { _, err = w.ResponseWriter.Write(p) })
			return len(completeEvent), err
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
