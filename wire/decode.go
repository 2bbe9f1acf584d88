package wire

import (
	"strconv"
	"unicode/utf8"
)

// decodeFast reads the messages this code writes — one JSON object whose
// keys are Message's own, spelled as Encode spells them, with plain
// strings (no escapes) and integers — without reflection, in one
// allocation. ok false means only that it did not take the message:
// Decode then hands it to encoding/json, which decides. Whatever it does
// take, it decodes exactly as json.Unmarshal would (FuzzDecodeFast checks
// that against encoding/json), so the fast path changes nothing but the
// cost: escapes, other keys or key spellings, null, fractions, exponents
// and anything malformed all go the slow way.
func decodeFast(b []byte) (m Message, ok bool) {
	s := string(b)
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return Message{}, false
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return m, skipSpace(s, i+1) == len(s)
	}
	for {
		var key string
		if key, i, ok = plainString(s, i); !ok {
			return Message{}, false
		}
		i = skipSpace(s, i)
		if i >= len(s) || s[i] != ':' {
			return Message{}, false
		}
		i = skipSpace(s, i+1)
		switch key {
		case "v":
			var n int64
			if n, i, ok = integer(s, i); !ok || int64(int(n)) != n {
				return Message{}, false
			}
			m.V = int(n)
		case "ts":
			if m.TS, i, ok = integer(s, i); !ok {
				return Message{}, false
			}
		case "id", "text", "scope", "p", "e":
			var v string
			if v, i, ok = plainString(s, i); !ok {
				return Message{}, false
			}
			switch key {
			case "id":
				m.ID = v
			case "text":
				m.Text = v
			case "scope":
				m.Scope = Scope(v)
			case "p":
				m.Pos = v
			default:
				m.Epoch = v
			}
		default:
			return Message{}, false
		}
		i = skipSpace(s, i)
		if i >= len(s) {
			return Message{}, false
		}
		switch s[i] {
		case ',':
			i = skipSpace(s, i+1)
		case '}':
			return m, skipSpace(s, i+1) == len(s)
		default:
			return Message{}, false
		}
	}
}

// skipSpace skips JSON whitespace from i.
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at i that has no escape and no control
// character, and is valid UTF-8 (json.Unmarshal would replace invalid
// bytes): its contents and the index after its closing quote.
func plainString(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", i, false
	}
	start := i + 1
	ascii := true
	// ifs, not a tagless switch, so that gremlins can mutate the conditions
	// (go-gremlins/gremlins#298; docs/mutation.md).
	for j := start; j < len(s); j++ {
		c := s[j]
		if c == '"' {
			v := s[start:j]
			if !ascii && !utf8.ValidString(v) {
				return "", i, false
			}
			return v, j + 1, true
		}
		if c == '\\' || c < 0x20 {
			return "", i, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	return "", i, false
}

// integer reads a JSON number at i that is an integer in int64's range,
// written without fraction or exponent.
func integer(s string, i int) (int64, int, bool) {
	j := i
	if j < len(s) && s[j] == '-' {
		j++
	}
	digits := j
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == digits { // no digits
		return 0, i, false
	}
	if s[digits] == '0' && j-digits > 1 { // a leading zero: not JSON
		return 0, i, false
	}
	if j < len(s) && (s[j] == '.' || s[j] == 'e' || s[j] == 'E') {
		return 0, i, false
	}
	n, err := strconv.ParseInt(s[i:j], 10, 64)
	if err != nil {
		return 0, i, false
	}
	return n, j, true
}
