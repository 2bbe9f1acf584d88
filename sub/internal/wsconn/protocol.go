package wsconn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
)

// Close codes of the graphql-transport-ws protocol (graphql-ws PROTOCOL.md).
const (
	CloseBadRequest            = 4400 // a message of a type or format the protocol does not specify
	CloseUnauthorized          = 4401 // subscribe before connection_ack
	CloseForbidden             = 4403 // connection_init refused
	CloseInitTimeout           = 4408 // no connection_init in time
	CloseSubscriberExists      = 4409 // subscribe with an id already in use
	CloseTooManyInitialisation = 4429 // a second connection_init
)

const (
	closeNormal        = 1000 // RFC 6455
	closeGoingAway     = 1001
	closeProtocolError = 1002
)

// CloseError is a close this package sent on its own because the client
// broke the graphql-transport-ws protocol. NextReader returns it, so
// gqlgen's error callback sees why the connection ended.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("wsconn: closed with %d: %s", e.Code, e.Reason)
}

// session makes gqlgen's graphql-transport-ws handling follow the
// protocol. gqlgen checks little of what a client sends and closes with
// 1002 or 1000 where the protocol wants a 44xx code; session validates
// every client message before gqlgen sees it, answers violations with the
// specified close, and rewrites what gqlgen sends where it would break the
// protocol.
//
// Operation ids are renamed on the way in: gqlgen only ever sees ids this
// session hands out, each used once. So a client may reuse an id as soon
// as it has completed it (as the protocol allows) without gqlgen's late
// "complete" for the old operation ending the new one, and every message
// for an operation that has ended, from the client's point of view, is
// dropped on the way out.
type session struct {
	mu       sync.Mutex
	initSeen bool
	acked    bool
	seq      uint64
	byClient map[string]*operation // live operations by the client's id
	byServer map[string]*operation // the same, by the id gqlgen knows
}

type operation struct {
	client, server string
	quoted         []byte // client, as a JSON string
}

func newSession() *session {
	return &session{byClient: map[string]*operation{}, byServer: map[string]*operation{}}
}

// verdict is what to do with one client message.
type verdict struct {
	forward []byte      // hand this to gqlgen (nil: nothing)
	reply   []byte      // send this to the client
	close   *CloseError // close the socket with this
}

// message is the canonical form of a message, as gqlgen decodes it.
type message struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func encode(m message) []byte {
	b, err := json.Marshal(m)
	if err != nil { // only strings and valid JSON go in
		panic(err)
	}
	return b
}

func badRequest(format string, args ...any) verdict {
	return verdict{close: &CloseError{Code: CloseBadRequest, Reason: fmt.Sprintf(format, args...)}}
}

// inbound decides what happens to one message from the client.
func (s *session) inbound(data []byte) verdict {
	m, problem := parse(data)
	if problem != "" {
		return badRequest("%s", problem)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m.Type {
	case "connection_init":
		if s.initSeen {
			return verdict{close: &CloseError{Code: CloseTooManyInitialisation, Reason: "Too many initialisation requests"}}
		}
		s.initSeen = true
		return verdict{forward: encode(m)}
	case "ping":
		if !s.initSeen { // gqlgen only answers pings after connection_init
			return verdict{reply: encode(message{Type: "pong", Payload: m.Payload})}
		}
		return verdict{forward: encode(m)}
	case "pong":
		if !s.initSeen {
			return verdict{}
		}
		return verdict{forward: encode(m)}
	case "subscribe":
		if !s.acked {
			return verdict{close: &CloseError{Code: CloseUnauthorized, Reason: "Unauthorized"}}
		}
		if _, dup := s.byClient[m.ID]; dup {
			return verdict{close: &CloseError{Code: CloseSubscriberExists, Reason: "Subscriber for " + m.ID + " already exists"}}
		}
		s.seq++
		quoted, _ := json.Marshal(m.ID)
		op := &operation{client: m.ID, server: strconv.FormatUint(s.seq, 10), quoted: quoted}
		s.byClient[op.client] = op
		s.byServer[op.server] = op
		m.ID = op.server
		return verdict{forward: encode(m)}
	case "complete":
		op := s.byClient[m.ID]
		if op == nil { // finished already, or never started: nothing to stop
			return verdict{}
		}
		s.forget(op)
		m.ID = op.server
		return verdict{forward: encode(m)}
	default: // connection_ack, next, error: the server's to send
		return badRequest("Unexpected message of type %s received", m.Type)
	}
}

func (s *session) forget(op *operation) {
	delete(s.byClient, op.client)
	delete(s.byServer, op.server)
}

// outbound rewrites a message gqlgen sends; nil means drop it.
func (s *session) outbound(data []byte) ([]byte, error) {
	m, ok := split(data)
	if !ok {
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("wsconn: outgoing message: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.ID == "" {
		if m.Type == "connection_ack" {
			s.acked = true
		}
		return data, nil
	}
	op := s.byServer[m.ID]
	if op == nil {
		// The client completed it, or gqlgen's "complete" after an
		// "error", which the protocol rules out.
		return nil, nil
	}
	if m.Type == "complete" || m.Type == "error" {
		s.forget(op)
	}
	return m.withID(op.quoted), nil
}

// split takes a frame gqlgen encoded apart without decoding it: this runs
// for every notice. gqlgen's messages are structs {Payload, ID, Type}, so a
// frame is {"payload":…,"id":"…","type":"…"} with the first two fields
// omitted when empty; the ids gqlgen sees are this session's numbers and
// the types are fixed names, so neither holds a quote or an escape, and the
// frame is read from its end. A frame of any other shape is not split.
func split(data []byte) (message, bool) {
	const (
		payloadKey = `{"payload":`
		idKey      = `"id":"`
		typeKey    = `"type":"`
	)
	var m message
	n := len(data)
	if n < 2 || data[n-1] != '}' || data[n-2] != '"' {
		return m, false
	}
	q := bytes.LastIndexByte(data[:n-2], '"')
	if q < 0 || !bytes.HasSuffix(data[:q+1], []byte(typeKey)) {
		return m, false
	}
	m.Type = string(data[q+1 : n-2])
	rest := data[:q+1-len(typeKey)] // everything before "type"
	if len(rest) == 1 && rest[0] == '{' {
		return m, true
	}
	if len(rest) < 2 || rest[len(rest)-1] != ',' {
		return m, false
	}
	rest = rest[:len(rest)-1]
	// An id is digits in quotes after `"id":`; a payload never ends so.
	if i := len(rest) - 1; i > 0 && rest[i] == '"' {
		j := i - 1
		for j >= 0 && rest[j] >= '0' && rest[j] <= '9' {
			j--
		}
		if j < i-1 && bytes.HasSuffix(rest[:j+1], []byte(idKey)) {
			m.ID = string(rest[j+1 : i])
			rest = rest[:j+1-len(idKey)]
			if len(rest) == 1 && rest[0] == '{' {
				return m, true
			}
			if len(rest) < 2 || rest[len(rest)-1] != ',' {
				return message{}, false
			}
			rest = rest[:len(rest)-1]
		}
	}
	p, ok := bytes.CutPrefix(rest, []byte(payloadKey))
	if !ok || len(p) < 2 || !(p[0] == '{' && p[len(p)-1] == '}' || p[0] == '[' && p[len(p)-1] == ']') {
		return message{}, false // the protocol's payloads are objects or arrays
	}
	m.Payload = p
	return m, true
}

// withID encodes m under quoted, an id as a JSON string. The payload came from gqlgen's encoder and
// is copied as is: this runs for every notice, so no second pass over it.
func (m message) withID(quoted []byte) []byte {
	b := make([]byte, 0, len(m.Payload)+len(quoted)+len(m.Type)+32)
	b = append(b, `{"id":`...)
	b = append(b, quoted...)
	b = append(b, `,"type":"`...)
	b = append(b, m.Type...) // one of the protocol's type names
	b = append(b, '"')
	if len(m.Payload) > 0 {
		b = append(b, `,"payload":`...)
		b = append(b, m.Payload...)
	}
	return append(b, '}')
}

// closeCode maps a close gqlgen chose to the one the protocol specifies.
// Closes for client mistakes never get here: inbound has sent them first,
// and a WebSocket carries one close frame only.
func (s *session) closeCode(code int, reason string) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case code == closeProtocolError && !s.acked:
		// Before connection_ack every client message but connection_init
		// is answered here, so gqlgen's 1002 can only mean its
		// InitTimeout passed.
		return CloseInitTimeout, "Connection initialisation timeout"
	case code == closeProtocolError:
		return CloseBadRequest, reason
	case code == closeNormal && !s.acked:
		// An InitFunc refused the connection without choosing a code.
		if reason == "" || reason == "terminated" {
			reason = "Forbidden"
		}
		return CloseForbidden, reason
	case code == closeNormal:
		// The server ended a live connection (its context ended). 1000
		// would make graphql-ws clients reconnect at once, without
		// backoff; 1001 makes them retry with it.
		return closeGoingAway, reason
	}
	return code, reason
}

// parse checks a client message as graphql-ws's own server does and
// returns it in canonical form, or why it is invalid.
func parse(data []byte) (message, string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return message{}, "Invalid message: expected a JSON object"
	}
	rawType, ok := fields["type"]
	if !ok {
		return message{}, "Message is missing the 'type' property"
	}
	var m message
	if err := json.Unmarshal(rawType, &m.Type); err != nil || isNull(rawType) {
		return message{}, "Message expects the 'type' property to be a string"
	}
	if p := fields["payload"]; !isNull(p) {
		m.Payload = p
	}
	switch m.Type {
	case "connection_init", "connection_ack", "ping", "pong":
		if m.Payload != nil && !isObject(m.Payload) {
			return message{}, fmt.Sprintf("%q message expects the 'payload' property to be an object or nullish or missing", m.Type)
		}
	case "subscribe", "next", "error", "complete":
		if err := json.Unmarshal(fields["id"], &m.ID); err != nil || m.ID == "" {
			return message{}, fmt.Sprintf("%q message requires a non-empty string 'id' property", m.Type)
		}
		if m.Type == "subscribe" {
			if problem := checkSubscribePayload(m.Payload); problem != "" {
				return message{}, problem
			}
		}
		if m.Type == "complete" {
			m.Payload = nil
		}
	default:
		return message{}, fmt.Sprintf("Invalid message 'type' property %q", m.Type)
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
	return len(v) == 0 || bytes.Equal(v, []byte("null"))
}

// isObject reports whether v, part of a valid JSON document, is an object.
func isObject(v json.RawMessage) bool {
	return len(v) > 0 && v[0] == '{'
}
