package transport

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
)

// The fast path for what clients send most: a subscribe message and its
// payload, read in one pass over the message instead of four decodes
// through encoding/json (a map of the message, a map of its payload, the
// query, then the payload again into graphql.RawParams). In a burst of
// 100,000 subscriptions the four took 13 % of sub's CPU.
//
// It takes only plain messages (keys without escapes, string values
// whose only escapes are the one-character ones, nesting under
// maxFastDepth) and whatever it takes it reads exactly as the slow path
// would (FuzzParseFast and FuzzParamsFast check that against it). ok
// false means only that it did not take the message: the slow path then
// decides, and says what is wrong.

// maxFastDepth bounds the nesting the fast path follows; deeper values go
// the slow way.
const maxFastDepth = 64

// members scans the JSON object s[i:] and calls member with each key and
// the span of its raw value; it answers the index after the object.
// member answering false stops the scan (not taken).
func members(s string, i int, depth int, member func(key string, start, end int) bool) (int, bool) {
	if depth > maxFastDepth || i >= len(s) || s[i] != '{' {
		return i, false
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return i + 1, true
	}
	for {
		key, j, ok := jsonString(s, i, false)
		if !ok {
			return i, false
		}
		j = skipSpace(s, j)
		if j >= len(s) || s[j] != ':' {
			return i, false
		}
		start := skipSpace(s, j+1)
		end, ok := skipValue(s, start, depth+1)
		if !ok || (member != nil && !member(key, start, end)) {
			return i, false
		}
		var done bool
		if i, done, ok = after(s, end, '}'); !ok || done {
			return i, ok
		}
	}
}

// after reads what follows a member or an element ending at end: a comma
// (more follows, from i) or the closing bracket (done: i is after it).
func after(s string, end int, closing byte) (i int, done, ok bool) {
	i = skipSpace(s, end)
	switch {
	case i >= len(s):
		return i, false, false
	case s[i] == ',':
		return skipSpace(s, i+1), false, true
	case s[i] == closing:
		return i + 1, true, true
	}
	return i, false, false
}

// skipValue answers the index after the JSON value at s[i], checking it
// as encoding/json would.
func skipValue(s string, i int, depth int) (int, bool) {
	if i >= len(s) {
		return i, false
	}
	switch c := s[i]; {
	case c == '{':
		return members(s, i, depth, nil)
	case c == '[':
		if depth > maxFastDepth {
			return i, false
		}
		i = skipSpace(s, i+1)
		if i < len(s) && s[i] == ']' {
			return i + 1, true
		}
		for {
			end, ok := skipValue(s, i, depth+1)
			if !ok {
				return i, false
			}
			var done bool
			if i, done, ok = after(s, end, ']'); !ok || done {
				return i, ok
			}
		}
	case c == '"':
		_, end, ok := jsonString(s, i, true)
		return end, ok
	case c == 't':
		return literal(s, i, "true")
	case c == 'f':
		return literal(s, i, "false")
	case c == 'n':
		return literal(s, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return number(s, i)
	}
	return i, false
}

func literal(s string, i int, word string) (int, bool) {
	if strings.HasPrefix(s[i:], word) {
		return i + len(word), true
	}
	return i, false
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func number(s string, i int) (int, bool) {
	j := i
	if j < len(s) && s[j] == '-' {
		j++
	}
	switch {
	case j < len(s) && s[j] == '0':
		j++
	case j < len(s) && s[j] >= '1' && s[j] <= '9':
		j = digits(s, j)
	default:
		return i, false
	}
	if j < len(s) && s[j] == '.' {
		k := digits(s, j+1)
		if k == j+1 {
			return i, false
		}
		j = k
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		j++
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := digits(s, j)
		if k == j {
			return i, false
		}
		j = k
	}
	return j, true
}

func digits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// skipSpace skips JSON whitespace from i.
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// jsonString reads the JSON string at s[i]: its value and the index after
// its closing quote. It takes the one-character escapes (\" \\ \/ \b \f
// \n \r \t) only when escapes is set, and never \u or invalid UTF-8
// (which encoding/json replaces): those strings are not taken.
func jsonString(s string, i int, escapes bool) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", i, false
	}
	start := i + 1
	ascii, escaped := true, false
	j := start
	for ; j < len(s); j++ {
		c := s[j]
		if c == '"' {
			break
		}
		if c < 0x20 {
			return "", i, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
		if c == '\\' {
			if !escapes || j+1 >= len(s) || unescape(s[j+1]) == 0 {
				return "", i, false
			}
			escaped = true
			j++
		}
	}
	if j >= len(s) {
		return "", i, false
	}
	v := s[start:j]
	if !ascii && !utf8.ValidString(v) {
		return "", i, false
	}
	if escaped {
		var b strings.Builder
		b.Grow(len(v))
		for k := 0; k < len(v); k++ {
			if v[k] == '\\' {
				k++
				b.WriteByte(unescape(v[k]))
			} else {
				b.WriteByte(v[k])
			}
		}
		v = b.String()
	}
	return v, j + 1, true
}

// unescape is the byte a one-character escape stands for; 0 for any other.
func unescape(c byte) byte {
	switch c {
	case '"', '\\', '/':
		return c
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return 0
}

// isNullSpan is isNull for a span of a message: absent or null.
func isNullSpan(s string) bool { return s == "" || s == "null" }

// parseFast is parse for the messages it takes (see above); ok false:
// parseSlow decides.
func parseFast(data []byte) (m msg, ok bool) {
	s := string(data) // one copy, so that spans can be sliced as strings
	var typ, id, payload string
	end, ok := members(s, skipSpace(s, 0), 0, func(key string, start, end int) bool {
		switch key {
		case "type":
			typ = s[start:end]
		case "id":
			id = s[start:end]
		case "payload":
			payload = s[start:end]
		}
		return true // a key given twice: the last one counts, as in parse's map
	})
	if !ok || skipSpace(s, end) != len(s) {
		return msg{}, false
	}
	if m.Type, _, ok = jsonString(typ, 0, true); !ok || len(typ) == 0 {
		return msg{}, false
	}
	if !isNullSpan(payload) {
		m.Payload = json.RawMessage(payload)
	}
	switch m.Type {
	case "subscribe":
		if m.ID, _, ok = jsonString(id, 0, true); !ok || m.ID == "" {
			return msg{}, false
		}
		if m.params, ok = paramsFast(m.Payload, true); !ok {
			return msg{}, false
		}
		return m, true
	case "complete":
		if m.ID, _, ok = jsonString(id, 0, true); !ok || m.ID == "" {
			return msg{}, false
		}
		m.Payload = nil
		return m, true
	case "connection_init", "ping", "pong":
		if m.Payload != nil && m.Payload[0] != '{' {
			return msg{}, false
		}
		return m, true
	}
	return msg{}, false // the rest is for the slow path to refuse
}

// rawParamsKeys are graphql.RawParams's JSON names: encoding/json matches
// them without regard to case, so a key that is one of them in another
// case is left to it.
var rawParamsKeys = []string{"query", "operationName", "variables", "extensions"}

// paramsFast is decodeParams for the payloads it takes; with strict, also
// only those checkSubscribePayload accepts. ok false: decode them the slow
// way.
func paramsFast(payload []byte, strict bool) (*graphql.RawParams, bool) {
	s := string(payload)
	i := skipSpace(s, 0)
	var query, name, vars, exts string
	end, ok := members(s, i, 0, func(key string, start, end int) bool {
		v := s[start:end]
		var at *string
		switch key {
		case "query":
			at = &query
		case "operationName":
			at = &name
		case "variables":
			at = &vars
		case "extensions":
			at = &exts
		default:
			for _, k := range rawParamsKeys {
				if strings.EqualFold(key, k) {
					return false
				}
			}
			return true
		}
		// A key given twice is left to encoding/json: into a struct it
		// merges two objects, where a map keeps the last.
		if *at != "" {
			return false
		}
		*at = v
		return true
	})
	if !ok || skipSpace(s, end) != len(s) {
		return nil, false
	}
	var p graphql.RawParams
	switch {
	case isNullSpan(query):
		if strict {
			return nil, false
		}
	default:
		if p.Query, _, ok = jsonString(query, 0, true); !ok {
			return nil, false
		}
	}
	if !isNullSpan(name) {
		if p.OperationName, _, ok = jsonString(name, 0, true); !ok {
			return nil, false
		}
	}
	if p.Variables, ok = objectOrNull(vars); !ok {
		return nil, false
	}
	if p.Extensions, ok = objectOrNull(exts); !ok {
		return nil, false
	}
	return &p, true
}

// objectOrNull decodes a span that is absent, null or an object, numbers
// as json.Number (decodeParams's UseNumber).
func objectOrNull(v string) (map[string]any, bool) {
	if isNullSpan(v) {
		return nil, true
	}
	if v[0] != '{' {
		return nil, false
	}
	if m, ok := flatObject(v); ok {
		return m, true
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(v)))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return nil, false
	}
	return m, true
}

// flatObject decodes an object whose values are all strings, numbers,
// booleans or null (the variables clients send) without encoding/json.
func flatObject(v string) (map[string]any, bool) {
	m := map[string]any{}
	end, ok := members(v, 0, 0, func(key string, start, end int) bool {
		switch c := v[start]; {
		case c == '"':
			s, _, ok := jsonString(v[start:end], 0, true)
			if !ok {
				return false
			}
			m[key] = s
		case c == 't':
			m[key] = true
		case c == 'f':
			m[key] = false
		case c == 'n':
			m[key] = nil
		case c == '-' || (c >= '0' && c <= '9'):
			m[key] = json.Number(v[start:end])
		default:
			return false
		}
		return true
	})
	return m, ok && end == len(v)
}
