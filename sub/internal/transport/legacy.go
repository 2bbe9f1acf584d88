package transport

import (
	"encoding/json"

	"github.com/vektah/gqlparser/v2/gqlerror"
)

// legacyTypes are the message types of the legacy graphql-ws protocol
// (subscriptions-transport-ws); anything else is not a message of it.
var legacyTypes = map[string]bool{
	"connection_init": true, "connection_terminate": true, "start": true, "stop": true,
	"connection_ack": true, "connection_error": true, "data": true, "error": true, "complete": true, "ka": true,
}

// handleLegacy handles one message of the legacy graphql-ws subprotocol,
// with its own rules as gqlgen served them: connection_error, then close
// 1002, for what it does not accept; "ka" keep-alives.
func (w *wsSession) handleLegacy(data []byte) {
	var m struct {
		ID      string          `json:"id"`
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &m); err != nil || !legacyTypes[m.Type] {
		w.connectionError("invalid json")
		w.close(CloseProtocolError, "decoding error")
		return
	}
	var seen bool
	if m.Type == "connection_init" {
		seen = w.sawInit()
	} else {
		w.mu.Lock()
		seen = w.initSeen
		w.mu.Unlock()
	}
	if m.Type == "connection_terminate" {
		w.close(CloseNormal, "terminated")
	} else if !seen && m.Type == "connection_init" {
		w.init(m.Payload)
	} else if seen && m.Type == "start" {
		w.start(m.ID, m.Payload, nil)
	} else if seen && m.Type == "stop" {
		w.complete(m.ID)
	} else {
		w.connectionError("unexpected message " + m.Type)
		w.close(CloseProtocolError, "unexpected message")
	}
}

func (w *wsSession) connectionError(text string) {
	w.send(nil, "connection_error", marshal(gqlerror.Errorf("%s", text)))
}
