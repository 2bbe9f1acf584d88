package transport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"

	"github.com/gorilla/websocket"
)

// Every way a connection ends has its reason: by the close code the server
// sends, by the close frame gorilla writes itself, by the read error.
func TestDisconnectReasons(t *testing.T) {
	for code, want := range map[int]reason{
		CloseNormal: reasonClientClosed, CloseGoingAway: reasonShutdown, CloseProtocolError: reasonProtocolError,
		CloseInternalError: reasonInternalError, CloseTryAgainLater: reasonSlowConsumer, CloseBadRequest: reasonProtocolError,
		CloseUnauthorized: reasonProtocolError, CloseForbidden: reasonAuthRefused, CloseInitTimeout: reasonInitTimeout,
		CloseSubscriberExists: reasonProtocolError, CloseTooManyInitialisation: reasonProtocolError, 4999: reasonUnknown,
	} {
		if got := finalReason(protoTransportWS, closeFrame(code, "why")); got != want {
			t.Errorf("close %d: %s, want %s", code, got, want)
		}
	}
	if got := finalReason(protoSSE, nil); got != reasonShutdown {
		t.Errorf("SSE ended without a final event: %s, want shutdown", got)
	}
	if got := finalReason(protoSSE, sseFinal([]byte(`{}`), true)); got != reasonUnknown {
		t.Errorf("SSE final event: %s, want none (its caller records why)", got)
	}
	for code, want := range map[int]reason{1000: reasonClientClosed, 1001: reasonClientClosed, 1002: reasonProtocolError, 1007: reasonProtocolError, 1009: reasonProtocolError} {
		if got := echoReason(closeFrame(code, "")); got != want {
			t.Errorf("gorilla's close %d: %s, want %s", code, got, want)
		}
	}
	for err, want := range map[error]reason{
		io.EOF:                             reasonClientClosed,
		fmt.Errorf("x: %w", net.ErrClosed): reasonClientClosed,
		&websocket.CloseError{Code: 1001}:  reasonClientClosed,
		&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}: reasonPingTimeout,
		websocket.ErrReadLimit:                                reasonProtocolError,
		errors.New("websocket: bad opcode 3"):                 reasonProtocolError,
	} {
		if got := readReason(err); got != want {
			t.Errorf("read error %v: %s, want %s", err, got, want)
		}
	}
	if len(DisconnectReasons()) != int(numReasons) {
		t.Fatalf("reasons %v", DisconnectReasons())
	}
	for _, n := range DisconnectReasons() {
		if n == "" {
			t.Fatalf("a reason without a name: %q", DisconnectReasons())
		}
	}
}

// The first reason recorded wins.
func TestFirstReasonWins(t *testing.T) {
	c := &conn{}
	c.setReason(reasonUnknown)
	c.setReason(reasonSlowConsumer)
	c.setReason(reasonClientClosed)
	if got := reason(c.reason.Load()); got != reasonSlowConsumer {
		t.Fatalf("%s, want slow_consumer", got)
	}
}
