package transport

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// protocol is what a connection speaks; it decides how a payload is framed.
type protocol uint8

const (
	protoTransportWS protocol = iota // graphql-transport-ws (graphql-ws library)
	protoLegacyWS                    // graphql-ws (subscriptions-transport-ws)
	protoSSE                         // graphql-sse, distinct connections mode
)

// Subprotocol names, in gqlgen's order of preference (kept: clients that
// offer both got the legacy protocol before, and still do).
const (
	subprotocolLegacy    = "graphql-ws"
	subprotocolTransport = "graphql-transport-ws"
)

// A notice is framed by splicing: prefix, the subscription's id (a JSON
// string), middle, the payload the hub rendered once for every subscription
// of its shape, suffix. Nothing is marshalled per subscription. "next" and
// "data" have the same length, so both WebSocket subprotocols frame to the
// same size. The subscription's cursor is spliced into the payload wherever
// the rendering left the cursor hole (the selection asked for the cursor),
// and on SSE it is also the event's id.
const (
	dataPrefix    = `{"id":`
	nextMiddle    = `,"type":"next","payload":`
	legacyMiddle  = `,"type":"data","payload":`
	dataSuffix    = `}`
	sseIDPrefix   = "id: "
	sseDataPrefix = "event: next\ndata: "
	sseDataSuffix = "\n\n"
)

// wsHeaderLen is the size of a server frame header for n payload bytes
// (server frames are not masked). (Ifs, not tagless switches, in the
// protocol files: gremlins v0.6.0 cannot see a switch's case conditions
// as covered, go-gremlins/gremlins#298, and they are mutation tested.)
func wsHeaderLen(n int) int {
	if n < 126 {
		return 2
	}
	if n <= 0xffff {
		return 4
	}
	return 10
}

// appendWSHeader appends the header of one final frame of opcode op.
func appendWSHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	if n < 126 {
		return append(b, byte(n))
	}
	if n <= 0xffff {
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
}

const (
	opText  = 0x1
	opClose = 0x8
)

// dataLen is the size of the framed notice of id (quoted) and payload,
// with cursor in its holes (payload has holes of them; hole is how long
// one is).
func dataLen(p protocol, qid []byte, payload []byte, holes, hole int, cursor string) int {
	pl := len(payload) + holes*(len(cursor)+2-hole)
	if p == protoSSE {
		n := len(sseDataPrefix) + pl + len(sseDataSuffix)
		if cursor != "" {
			n += len(sseIDPrefix) + len(cursor) + 1
		}
		return n
	}
	n := len(dataPrefix) + len(qid) + len(nextMiddle) + pl + len(dataSuffix)
	return wsHeaderLen(n) + n
}

// appendData frames a notice for one subscription: payload with cursor in
// its holes (hole nil: none).
func appendData(b []byte, p protocol, qid, payload, hole []byte, holes int, cursor string) []byte {
	if p == protoSSE {
		if cursor != "" {
			b = append(b, sseIDPrefix...)
			b = append(b, cursor...)
			b = append(b, '\n')
		}
		b = append(b, sseDataPrefix...)
		b = splice(b, payload, hole, holes, cursor)
		return append(b, sseDataSuffix...)
	}
	n := len(dataPrefix) + len(qid) + len(nextMiddle) + len(payload) + holes*(len(cursor)+2-len(hole)) + len(dataSuffix)
	b = appendWSHeader(b, opText, n)
	b = append(b, dataPrefix...)
	b = append(b, qid...)
	if p == protoLegacyWS {
		b = append(b, legacyMiddle...)
	} else {
		b = append(b, nextMiddle...)
	}
	b = splice(b, payload, hole, holes, cursor)
	return append(b, dataSuffix...)
}

// splice appends payload with cursor, as a JSON string (a cursor is
// base64url: nothing to escape), in place of each of its holes holes.
func splice(b, payload, hole []byte, holes int, cursor string) []byte {
	for ; holes > 0; holes-- {
		i := bytes.Index(payload, hole)
		if i < 0 {
			break
		}
		b = append(b, payload[:i]...)
		b = append(b, '"')
		b = append(b, cursor...)
		b = append(b, '"')
		payload = payload[i+len(hole):]
	}
	return append(b, payload...)
}

// textFrame is one WebSocket text frame holding msg.
func textFrame(msg []byte) []byte {
	return append(appendWSHeader(make([]byte, 0, len(msg)+10), opText, len(msg)), msg...)
}

// closeFrame is a WebSocket close frame with code and reason, the reason
// cut to the 123 bytes a control frame leaves for it.
func closeFrame(code int, reason string) []byte {
	reason = truncate(reason)
	b := appendWSHeader(make([]byte, 0, 4+len(reason)), opClose, 2+len(reason))
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	return append(b, reason...)
}

// truncate keeps a close reason within the 123 bytes a close frame allows,
// on a character boundary.
func truncate(s string) string {
	if len(s) <= 123 {
		return s
	}
	s = s[:120]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// message builds one protocol message {"id":…,"type":…,"payload":…}; id
// is a JSON string or nil, payload JSON or nil.
func message(typ string, qid, payload []byte) []byte {
	b := make([]byte, 0, len(typ)+len(qid)+len(payload)+32)
	b = append(b, '{')
	if qid != nil {
		b = append(b, `"id":`...)
		b = append(b, qid...)
		b = append(b, ',')
	}
	b = append(b, `"type":"`...)
	b = append(b, typ...)
	b = append(b, '"')
	if payload != nil {
		b = append(b, `,"payload":`...)
		b = append(b, payload...)
	}
	return append(b, '}')
}
