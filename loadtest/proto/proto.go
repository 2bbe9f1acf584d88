// Package proto builds and reads the client side of the three WebSocket
// protocols the load tool speaks: graphql-transport-ws (the graphql-ws
// spec), the legacy graphql-ws (subscriptions-transport-ws) and Centrifugo's
// JSON protocol. Reading is a scan of the few fields the tool needs rather
// than a full decode, so the load generator spends its CPU on sockets, not
// on JSON.
package proto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Kind is a wire protocol.
type Kind int

const (
	TransportWS Kind = iota // graphql-transport-ws
	LegacyWS                // graphql-ws (subscriptions-transport-ws)
	Centrifugo              // Centrifugo v6 JSON protocol
)

// ParseKind accepts "graphql-transport-ws", "graphql-ws" and "centrifugo".
func ParseKind(s string) (Kind, error) {
	switch s {
	case "graphql-transport-ws", "gtws", "":
		return TransportWS, nil
	case "graphql-ws", "legacy":
		return LegacyWS, nil
	case "centrifugo":
		return Centrifugo, nil
	}
	return 0, fmt.Errorf("proto: unknown protocol %q", s)
}

func (k Kind) String() string {
	switch k {
	case LegacyWS:
		return "graphql-ws"
	case Centrifugo:
		return "centrifugo"
	}
	return "graphql-transport-ws"
}

// Subprotocol is the Sec-WebSocket-Protocol to ask for ("" for none).
func (k Kind) Subprotocol() string {
	switch k {
	case TransportWS:
		return "graphql-transport-ws"
	case LegacyWS:
		return "graphql-ws"
	}
	return ""
}

// Query is the subscription every GraphQL client sends.
const Query = `subscription($u: String!) { onNotificationReceived(userName: $u) { id text timestamp } }`

// ResumeQuery is Query with the notice's cursor selected and an after
// argument: a subscription that resumes after a cursor it was sent.
const ResumeQuery = `subscription($u: String!, $a: String) { onNotificationReceived(userName: $u, after: $a) { id text timestamp cursor } }`

// ResumeFrame subscribes id to user's notices with ResumeQuery, after the
// cursor after ("": from now). GraphQL protocols only.
func ResumeFrame(k Kind, id int, user, after string) []byte {
	vars := map[string]any{"u": user}
	if after != "" {
		vars["a"] = after
	}
	typ := "subscribe"
	if k == LegacyWS {
		typ = "start"
	}
	b, _ := json.Marshal(map[string]any{"id": strconv.Itoa(id), "type": typ,
		"payload": map[string]any{"query": ResumeQuery, "variables": vars}})
	return b
}

// InitFrame is the first frame of a connection. For GraphQL the token, if
// any, travels in the connection_init payload as Authorization; for
// Centrifugo it is the connect command's token.
func InitFrame(k Kind, token string) []byte {
	if k == Centrifugo {
		b, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]any{"token": token, "name": "oshirase-load"}})
		return b
	}
	payload := map[string]any{}
	if token != "" {
		payload["Authorization"] = "Bearer " + token
	}
	b, _ := json.Marshal(map[string]any{"type": "connection_init", "payload": payload})
	return b
}

// SubscribeFrame subscribes id to user's notices. For Centrifugo, channel
// is the channel name and id the command id.
func SubscribeFrame(k Kind, id int, user, channel string) []byte {
	switch k {
	case Centrifugo:
		b, _ := json.Marshal(map[string]any{"id": id, "subscribe": map[string]any{"channel": channel}})
		return b
	case LegacyWS:
		b, _ := json.Marshal(map[string]any{"id": strconv.Itoa(id), "type": "start",
			"payload": map[string]any{"query": Query, "variables": map[string]any{"u": user}}})
		return b
	}
	b, _ := json.Marshal(map[string]any{"id": strconv.Itoa(id), "type": "subscribe",
		"payload": map[string]any{"query": Query, "variables": map[string]any{"u": user}}})
	return b
}

// EventType classifies one incoming message.
type EventType int

const (
	Other     EventType = iota
	Ack                 // connection_ack / connect reply
	Data                // a notice for subscription ID (or Channel)
	Ping                // must be answered with Pong(k)
	KeepAlive           // legacy "ka"; nothing to answer
	SubOK               // Centrifugo subscribe reply
	Error               // error / connection_error / Centrifugo error reply
	Complete            // server ended a subscription
)

// Event is what Parse found in one message.
type Event struct {
	Type    EventType
	ID      int    // subscription id (GraphQL) or command id (Centrifugo reply)
	Channel []byte // Centrifugo push channel
	Text    []byte // notice text (aliases the input)
	Cursor  []byte // GraphQL: the notice's cursor, when selected (aliases the input)
	Raw     []byte // the message (for error reports)
}

// Pong is the answer to a Ping.
func Pong(k Kind) []byte {
	if k == Centrifugo {
		return []byte("{}")
	}
	return []byte(`{"type":"pong"}`)
}

// Parse reads one WebSocket message. Centrifugo may batch several JSON
// objects in one message, one a line; Parse calls fn once for each.
func Parse(k Kind, msg []byte, fn func(Event)) {
	if k != Centrifugo {
		fn(parseGraphQL(msg))
		return
	}
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			fn(parseCentrifugo(line))
		}
	}
}

func parseGraphQL(msg []byte) Event {
	ev := Event{Raw: msg}
	typ := unquote(TopLevel(msg, "type"))
	switch string(typ) {
	case "next", "data":
		ev.Type = Data
		ev.ID = atoi(unquote(TopLevel(msg, "id")))
		payload := TopLevel(msg, "payload")
		ev.Text = textField(payload)
		ev.Cursor = stringField(payload, "cursor")
		if ev.Text == nil {
			ev.Type = Error // a next without data: a GraphQL error result
		}
	case "connection_ack":
		ev.Type = Ack
	case "ping":
		ev.Type = Ping
	case "ka", "pong":
		ev.Type = KeepAlive
	case "error", "connection_error":
		ev.Type = Error
		ev.ID = atoi(unquote(TopLevel(msg, "id")))
	case "complete":
		ev.Type = Complete
		ev.ID = atoi(unquote(TopLevel(msg, "id")))
	}
	return ev
}

func parseCentrifugo(msg []byte) Event {
	ev := Event{Raw: msg}
	if bytes.Equal(bytes.TrimSpace(msg), []byte("{}")) {
		ev.Type = Ping
		return ev
	}
	if push := TopLevel(msg, "push"); push != nil {
		pub := TopLevel(push, "pub")
		if pub == nil {
			return ev // join/leave/unsubscribe: not ours
		}
		ev.Type = Data
		ev.Channel = unquote(TopLevel(push, "channel"))
		ev.Text = textField(pub)
		return ev
	}
	ev.ID = atoi(TopLevel(msg, "id"))
	switch {
	case TopLevel(msg, "error") != nil:
		ev.Type = Error
	case TopLevel(msg, "connect") != nil:
		ev.Type = Ack
	case TopLevel(msg, "subscribe") != nil:
		ev.Type = SubOK
	}
	return ev
}

// textField finds the value of the first "text" string inside v. The load
// tool's texts are plain ASCII, so no unescaping is needed.
func textField(v []byte) []byte { return stringField(v, "text") }

// stringField finds the value of the first string field name inside v
// (texts and cursors need no unescaping).
func stringField(v []byte, name string) []byte {
	key := `"` + name + `":`
	i := bytes.Index(v, []byte(key))
	if i < 0 {
		return nil
	}
	rest := bytes.TrimLeft(v[i+len(key):], " ")
	if len(rest) == 0 || rest[0] != '"' {
		return nil
	}
	end := bytes.IndexByte(rest[1:], '"')
	if end < 0 {
		return nil
	}
	return rest[1 : 1+end]
}

// TopLevel returns the raw value of key in the top-level JSON object msg,
// or nil. Nested objects and strings are skipped without decoding.
func TopLevel(msg []byte, key string) []byte {
	i := skipWS(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return nil
	}
	i++
	for {
		i = skipWS(msg, i)
		if i >= len(msg) || msg[i] == '}' {
			return nil
		}
		if msg[i] == ',' {
			i++
			continue
		}
		if msg[i] != '"' {
			return nil
		}
		kEnd := skipString(msg, i)
		if kEnd < 0 {
			return nil
		}
		k := msg[i+1 : kEnd-1]
		i = skipWS(msg, kEnd)
		if i >= len(msg) || msg[i] != ':' {
			return nil
		}
		i = skipWS(msg, i+1)
		vEnd := skipValue(msg, i)
		if vEnd < 0 {
			return nil
		}
		if string(k) == key {
			return msg[i:vEnd]
		}
		i = vEnd
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := skipString(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' {
		j++
	}
	return j
}

func unquote(v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

func atoi(b []byte) int {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	if len(b) == 0 {
		return -1
	}
	return n
}
