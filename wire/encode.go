package wire

import (
	"strconv"
	"unicode/utf8"
)

// appendMessage appends m as json.Marshal writes it (the same keys in the
// same order, omitempty for p and e, the same string escapes), without
// reflection: Encode runs once per published notice. FuzzEncode checks it
// against encoding/json.
func appendMessage(b []byte, m *Message) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(m.V), 10)
	b = append(b, `,"id":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"text":`...)
	b = appendString(b, m.Text)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, m.TS, 10)
	b = append(b, `,"scope":`...)
	b = appendString(b, string(m.Scope))
	if m.Pos != "" {
		b = append(b, `,"p":`...)
		b = appendString(b, m.Pos)
	}
	if m.Epoch != "" {
		b = append(b, `,"e":`...)
		b = appendString(b, m.Epoch)
	}
	return append(b, '}')
}

// appendString appends s quoted as encoding/json quotes a string (HTML
// escaping on): ", \ and control characters escaped, <, > and & as \u00XX,
// U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
