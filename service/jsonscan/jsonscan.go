// Package jsonscan reads plain JSON objects in one pass, for decoders
// with a fast path beside encoding/json: sub's WebSocket messages and
// the GraphQL requests both services decode (gqlserve.DecodeParams). It
// takes only plain input (keys without escapes, string values whose only
// escapes are the one-character ones, nesting under MaxDepth) and reads
// whatever it takes as encoding/json would; ok false means only that it
// did not take the input: the caller's encoding/json path then decides,
// and says what is wrong.
package jsonscan

import (
	"strings"
	"unicode/utf8"
)

// MaxDepth bounds the nesting the scanner follows; deeper values are not
// taken.
const MaxDepth = 64

// Members scans the JSON object s[i:] and calls member with each key and
// the span of its raw value, checked as encoding/json would check it; it
// answers the index after the object. member answering false stops the
// scan (not taken). A key with an escape is not taken.
func Members(s string, i int, member func(key string, start, end int) bool) (int, bool) {
	return members(s, i, 0, member)
}

// IsNull reports whether a member's span is absent or null.
func IsNull(span string) bool { return span == "" || span == "null" }

// members is Members for an object nested depth deep.
func members(s string, i int, depth int, member func(key string, start, end int) bool) (int, bool) {
	if depth > MaxDepth || i >= len(s) || s[i] != '{' {
		return i, false
	}
	i = SkipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return i + 1, true
	}
	for {
		key, j, ok := String(s, i, false)
		if !ok {
			return i, false
		}
		j = SkipSpace(s, j)
		if j >= len(s) || s[j] != ':' {
			return i, false
		}
		start := SkipSpace(s, j+1)
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

// Elements scans the JSON array s[i:] and calls element with the span
// of each raw element, checked as encoding/json would check it; it
// answers the index after the array. element answering false stops the
// scan (not taken).
func Elements(s string, i int, element func(start, end int) bool) (int, bool) {
	return elements(s, i, 0, element)
}

// elements is Elements for an array nested depth deep.
func elements(s string, i int, depth int, element func(start, end int) bool) (int, bool) {
	if depth > MaxDepth || i >= len(s) || s[i] != '[' {
		return i, false
	}
	i = SkipSpace(s, i+1)
	if i < len(s) && s[i] == ']' {
		return i + 1, true
	}
	for {
		end, ok := skipValue(s, i, depth+1)
		if !ok || (element != nil && !element(i, end)) {
			return i, false
		}
		var done bool
		if i, done, ok = after(s, end, ']'); !ok || done {
			return i, ok
		}
	}
}

// after reads what follows a member or an element ending at end: a comma
// (more follows, from i) or the closing bracket (done: i is after it).
func after(s string, end int, closing byte) (i int, done, ok bool) {
	i = SkipSpace(s, end)
	switch {
	case i >= len(s):
		return i, false, false
	case s[i] == ',':
		return SkipSpace(s, i+1), false, true
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
		return elements(s, i, depth, nil)
	case c == '"':
		_, end, ok := String(s, i, true)
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

// SkipSpace skips JSON whitespace from i.
func SkipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// String reads the JSON string at s[i]: its value and the index after
// its closing quote. It takes the one-character escapes (\" \\ \/ \b \f
// \n \r \t) only when escapes is set, and never \u or invalid UTF-8
// (which encoding/json replaces): those strings are not taken.
func String(s string, i int, escapes bool) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", i, false
	}
	start := i + 1
	ascii, escaped := true, false
	j := start
	for ; j < len(s); j++ {
		c := s[j]
		if plain[c] {
			continue
		}
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

// plain marks the bytes a string holds as they are: printable ASCII but
// the quote and the backslash. String looks at any other byte.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

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
