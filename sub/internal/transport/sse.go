package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/sub/internal/cursor"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// ServeSSE serves one GraphQL request as an event stream (graphql-sse,
// distinct connections mode). Problems with the request itself are HTTP
// errors with a code (413 over READ_LIMIT, 400 for a body that is not a
// GraphQL request, 401 for an expired token); a request that fails
// GraphQL validation or is refused gets a 200 stream with a "next" event
// carrying the errors, then "complete", as the protocol asks. A live
// subscription takes over the socket: it is written by the same engine as a
// WebSocket, from the same rendered bytes and the same bounded queue. A
// client too slow for its queue gets a final event saying why, without
// "complete" (its client reconnects); an expired token ends the stream with
// an UNAUTHENTICATED event and "complete".
func (s *Server) ServeSSE(w http.ResponseWriter, r *http.Request) {
	admitted, release, ok := s.cfg.Admit(w, r)
	if !ok {
		return
	}
	r = r.WithContext(admitted)
	streaming := false // the stream's connection took over release
	defer func() {
		if !streaming {
			release()
		}
	}()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.ReadLimit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			if s.cfg.TooLarge != nil {
				s.cfg.TooLarge()
			}
			errkind.WriteHTTP(w, http.StatusRequestEntityTooLarge, errkind.CodeRequestTooLarge, fmt.Sprintf("request body over the limit of %d bytes", s.cfg.ReadLimit))
			return
		}
		errkind.WriteHTTP(w, http.StatusBadRequest, errkind.CodeBadRequest, "could not read the request body")
		return
	}
	params, err := gqlserve.DecodeParams(body)
	if err != nil {
		errkind.WriteHTTP(w, http.StatusBadRequest, errkind.CodeBadRequest, "the request body is not a GraphQL request (a JSON object with a query)")
		return
	}
	ctx := r.Context()
	exp := s.cfg.Expiry(ctx)
	if !exp.IsZero() && !time.Now().Before(exp) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="oshirase"`)
		errkind.WriteHTTP(w, http.StatusUnauthorized, errkind.CodeUnauthenticated, "token expired")
		return
	}
	opCtx, field, errs := s.prepare(ctx, params)
	if errs != nil {
		writeEvents(w, marshal(s.present(ctx, opCtx, errs)))
		return
	}
	if field == nil { // a query or mutation: executed once
		var out [][]byte
		for _, resp := range s.runOnce(ctx, opCtx) {
			out = append(out, marshal(resp))
		}
		writeEvents(w, out...)
		return
	}
	chs, shape, afterText, err := s.cfg.Streams.Open(ctx, opCtx, *field)
	var after *cursor.Cursor
	if err == nil {
		if id := r.Header.Get("Last-Event-ID"); afterText == nil && id != "" {
			afterText = &id // an EventSource reconnecting: resume like after
		}
		if after, err = s.decodeAfter(afterText, chs); err != nil {
			shape.Release()
		}
	}
	if err != nil {
		writeEvents(w, marshal(s.present(ctx, opCtx, fieldErrors(field, err))))
		return
	}

	head := sseHead(w.Header())
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		shape.Release()
		errkind.WriteHTTP(w, http.StatusInternalServerError, errkind.CodeInternal, "streaming unsupported")
		return
	}
	_ = nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := nc.Write(head); err != nil {
		shape.Release()
		_ = nc.Close()
		return
	}
	_ = nc.SetWriteDeadline(time.Time{})

	c := s.newConn(nc, protoSSE)
	c.release, streaming = release, true
	// The request's context ends with this handler; the stream needs none
	// of its values any more.
	op := &operation{c: c, ctx: context.Background(), shape: shape, ended: make(chan struct{})}
	c.onClosed = func() { op.end(true) }
	s.track(c)
	c.keepAlive([]byte(": ping\n\n"))
	if !exp.IsZero() {
		c.after(time.Until(exp), func() {
			c.setReason(reasonAuthExpired)
			c.finish(sseFinal(errorResponse("token expired", errkind.CodeUnauthenticated), true), false)
		})
	}
	go readSSE(c)
	go s.subscribe(op, chs, shape, after, field.Alias, func(errs gqlerror.List) {
		c.setReason(reasonCompleted)
		c.finish(sseFinal(marshal(responseWithErrors(errs)), true), false)
	})
}

// readSSE is a stream's one long-lived goroutine: it parks on the socket
// to learn when the client goes (the client sends nothing more).
func readSSE(c *conn) {
	buf := make([]byte, 64)
	for {
		if _, err := c.nc.Read(buf); err != nil {
			c.readerExited(err)
			return
		}
	}
}

// sseHead is the response head of a stream, with the headers set so far
// (CORS): the body runs until the connection closes.
func sseHead(h http.Header) []byte {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "close")
	h.Set("X-Accel-Buffering", "no")
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&b)
	b.WriteString("\r\n:\n\n")
	return b.Bytes()
}

// sseFinal is the last event of a stream: a result (errors), then
// "complete" when the operation is over for good.
func sseFinal(payload []byte, complete bool) []byte {
	b := appendData(nil, protoSSE, nil, payload, nil, 0, "")
	if complete {
		b = append(b, "event: complete\n\n"...)
	}
	return b
}

// writeEvents answers a request with a short stream: each payload as a
// "next" event, then "complete".
func writeEvents(w http.ResponseWriter, payloads ...[]byte) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	var b []byte
	for _, p := range payloads {
		b = appendData(b, protoSSE, nil, p, nil, 0, "")
	}
	b = append(b, "event: complete\n\n"...)
	_, _ = w.Write(b)
}
