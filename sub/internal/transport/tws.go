package transport

import (
	"encoding/json"
	"fmt"

	"github.com/99designs/gqlgen/graphql"

	"github.com/oshirase/oshirase/service/jsonscan"
)

// msg is a graphql-transport-ws message in canonical form.
type msg struct {
	ID      string
	Type    string
	Payload json.RawMessage
	params  *graphql.RawParams // a subscribe's payload, when parseFast read it
}

// handleTransport handles one graphql-transport-ws message, following
// graphql-ws's PROTOCOL.md to the letter: clients decide whether to retry
// from the close code.
func (w *wsSession) handleTransport(data []byte) {
	m, problem := parse(data)
	if problem != "" {
		w.close(CloseBadRequest, problem)
		return
	}
	switch m.Type {
	case "connection_init":
		seen := w.sawInit()
		if seen {
			w.close(CloseTooManyInitialisation, "Too many initialisation requests")
			return
		}
		w.init(m.Payload)
	case "ping": // allowed at any time, even before connection_init
		w.send(nil, "pong", m.Payload)
	case "pong":
	case "subscribe":
		w.mu.Lock()
		acked := w.acked
		_, dup := w.ops[m.ID]
		w.mu.Unlock()
		if !acked {
			w.close(CloseUnauthorized, "Unauthorized")
		} else if dup {
			w.close(CloseSubscriberExists, "Subscriber for "+m.ID+" already exists")
		} else {
			w.start(m.ID, m.Payload, m.params)
		}
	case "complete":
		w.complete(m.ID) // an id that finished already, or never started: nothing to stop
	default: // connection_ack, next, error: the server's to send
		w.close(CloseBadRequest, fmt.Sprintf("Unexpected message of type %s received", m.Type))
	}
}

// parse checks a client message as graphql-ws's own server does and
// returns it in canonical form, or why it is invalid.
func parse(data []byte) (msg, string) {
	if m, ok := parseFast(data); ok {
		return m, ""
	}
	return parseSlow(data)
}

// parseSlow is parse through encoding/json, for every message.
func parseSlow(data []byte) (msg, string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return msg{}, "Invalid message: expected a JSON object"
	}
	rawType, ok := fields["type"]
	if !ok {
		return msg{}, "Message is missing the 'type' property"
	}
	var m msg
	if err := json.Unmarshal(rawType, &m.Type); err != nil || isNull(rawType) {
		return msg{}, "Message expects the 'type' property to be a string"
	}
	if p := fields["payload"]; !isNull(p) {
		m.Payload = p
	}
	switch m.Type {
	case "connection_init", "connection_ack", "ping", "pong":
		if m.Payload != nil && !isObject(m.Payload) {
			return msg{}, fmt.Sprintf("%q message expects the 'payload' property to be an object or nullish or missing", m.Type)
		}
	case "subscribe", "next", "error", "complete":
		if err := json.Unmarshal(fields["id"], &m.ID); err != nil || m.ID == "" {
			return msg{}, fmt.Sprintf("%q message requires a non-empty string 'id' property", m.Type)
		}
		if m.Type == "subscribe" {
			if problem := checkSubscribePayload(m.Payload); problem != "" {
				return msg{}, problem
			}
		}
		if m.Type == "complete" {
			m.Payload = nil
		}
	default:
		return msg{}, fmt.Sprintf("Invalid message 'type' property %q", m.Type)
	}
	return m, ""
}

func checkSubscribePayload(p json.RawMessage) string {
	var fields map[string]json.RawMessage
	if !isObject(p) || json.Unmarshal(p, &fields) != nil {
		return `"subscribe" message expects the 'payload' property to be an object`
	}
	var query string
	if err := json.Unmarshal(fields["query"], &query); err != nil || isNull(fields["query"]) {
		return `"subscribe" message payload expects the 'query' property to be a string`
	}
	for _, name := range []string{"variables", "extensions"} {
		if v := fields[name]; !isNull(v) && !isObject(v) {
			return fmt.Sprintf(`"subscribe" message payload expects the '%s' property to be an object or nullish or missing`, name)
		}
	}
	if v := fields["operationName"]; !isNull(v) && (len(v) == 0 || v[0] != '"') {
		return `"subscribe" message payload expects the 'operationName' property to be a string or nullish or missing`
	}
	return ""
}

// isNull reports whether v, part of a valid JSON document, is absent or null.
func isNull(v json.RawMessage) bool {
	return jsonscan.IsNull(string(v))
}

// isObject reports whether v, part of a valid JSON document, is an object.
func isObject(v json.RawMessage) bool {
	return len(v) > 0 && v[0] == '{'
}
