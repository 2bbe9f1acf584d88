package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/gorilla/websocket"
)

// reason is why a connection ended: the first cause recorded wins (a
// slow consumer's client that then answers the close is still a slow
// consumer). Each is counted (oshirase_sub_disconnects_total{reason}) and
// logged in one line when the socket closes.
type reason uint32

const (
	reasonUnknown       reason = iota // nothing recorded: counted as "other"
	reasonClientClosed                // the peer closed, or ended the connection (legacy connection_terminate)
	reasonSlowConsumer                // over WRITE_QUEUE_BYTES or QUEUE_SIZE
	reasonWriteTimeout                // a write blocked past WRITE_TIMEOUT
	reasonWriteError                  // a write failed: the peer is gone
	reasonPingTimeout                 // graphql-transport-ws peer silent for twice KEEPALIVE
	reasonProtocolError               // a message the protocol does not allow, or over READ_LIMIT
	reasonInitTimeout                 // no connection_init within INIT_TIMEOUT
	reasonAuthRefused                 // connection_init refused (4403)
	reasonAuthExpired                 // the token expired on an open connection
	reasonShutdown                    // the server is shutting down or draining
	reasonCompleted                   // an SSE stream whose subscription ended (the server completed it)
	reasonLimit                       // a configured limit closed it
	reasonInternalError               // a panic while handling a message (1011)
	numReasons
)

var reasonNames = [numReasons]string{
	reasonUnknown:       "other",
	reasonClientClosed:  "client_closed",
	reasonSlowConsumer:  "slow_consumer",
	reasonWriteTimeout:  "write_timeout",
	reasonWriteError:    "write_error",
	reasonPingTimeout:   "ping_timeout",
	reasonProtocolError: "protocol_error",
	reasonInitTimeout:   "init_timeout",
	reasonAuthRefused:   "auth_refused",
	reasonAuthExpired:   "auth_expired",
	reasonShutdown:      "shutdown",
	reasonCompleted:     "completed",
	reasonLimit:         "limit",
	reasonInternalError: "internal_error",
}

func (r reason) String() string { return reasonNames[r] }

// DisconnectReasons are the values of oshirase_sub_disconnects_total's
// reason label.
func DisconnectReasons() []string { return reasonNames[:] }

// Disconnects returns how many connections ended for reason (one of
// DisconnectReasons), counted when their socket closed.
func (s *Server) Disconnects(name string) int64 {
	for r, n := range reasonNames {
		if n == name {
			return s.disconnects[r].Load()
		}
	}
	return 0
}

// codeReason is why a WebSocket closed with code by the server.
func codeReason(code int) reason {
	switch code {
	case CloseNormal:
		return reasonClientClosed // legacy: the client asked to terminate
	case CloseGoingAway:
		return reasonShutdown
	case CloseTryAgainLater:
		return reasonSlowConsumer
	case CloseInternalError:
		return reasonInternalError
	case CloseInitTimeout:
		return reasonInitTimeout
	case CloseForbidden:
		return reasonAuthRefused
	case CloseProtocolError, CloseBadRequest, CloseUnauthorized, CloseSubscriberExists, CloseTooManyInitialisation:
		return reasonProtocolError
	}
	return reasonUnknown
}

// finalReason is why a connection ends with final as its last frame, as
// far as the frame tells: a WebSocket close frame by its code; an SSE
// stream ended with no final event is a shutdown (CloseAll). Other final
// events record their reason before they finish.
func finalReason(p protocol, final []byte) reason {
	if p == protoSSE {
		if final == nil {
			return reasonShutdown
		}
		return reasonUnknown
	}
	if code, ok := closeCode(final); ok {
		return codeReason(code)
	}
	return reasonUnknown
}

// closeCode reads the status code of a server's (unmasked) close frame.
func closeCode(frame []byte) (int, bool) {
	if len(frame) < 4 || frame[0]&0x0f != opClose || frame[1]&0x7f < 2 || frame[1]&0x7f > 125 {
		return 0, false
	}
	return int(frame[2])<<8 | int(frame[3]), true
}

// echoReason is why a connection ends when gorilla writes a close frame
// itself: it answers the peer's close with the peer's code, or refuses a
// frame it could not read with 1002, 1007 or 1009.
func echoReason(frame []byte) reason {
	code, _ := closeCode(frame)
	switch code {
	case websocket.CloseProtocolError, websocket.CloseInvalidFramePayloadData, websocket.CloseMessageTooBig:
		return reasonProtocolError
	}
	return reasonClientClosed
}

// readReason is why a connection's reading ended with err, when nothing
// else ended it first.
func readReason(err error) reason {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return reasonPingTimeout // the only read deadline of an open connection
	case errors.As(err, &ce), err == nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.As(err, &ne):
		return reasonClientClosed
	}
	return reasonProtocolError // gorilla refused a frame (and sent 1002 or 1009)
}

// setReason records why the connection ends, unless a reason is recorded
// already.
func (c *conn) setReason(r reason) {
	c.reason.CompareAndSwap(uint32(reasonUnknown), uint32(r))
}

// disconnected counts and logs the end of c, once its socket is closed:
// one line per connection the server dropped or refused, at debug level
// for those the client ended or a shutdown closed (a fleet's worth), and
// none for slow consumers, logged with their bound when they were cut off.
func (c *conn) disconnected() {
	r := reason(c.reason.Load())
	c.srv.disconnects[r].Add(1)
	level := slog.LevelInfo
	switch r {
	case reasonClientClosed, reasonCompleted, reasonShutdown:
		level = slog.LevelDebug
	case reasonSlowConsumer, reasonWriteTimeout:
		return // logged with its bound when it was cut off
	}
	ctx := context.Background()
	if !c.srv.log.Enabled(ctx, level) {
		return
	}
	c.srv.log.Log(ctx, level, "connection closed", "reason", r.String(), "protocol", protoNames[c.proto], "remote", c.nc.RemoteAddr().String())
}

var protoNames = [...]string{protoTransportWS: subprotocolTransport, protoLegacyWS: subprotocolLegacy, protoSSE: "sse"}
