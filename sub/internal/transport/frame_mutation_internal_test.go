package transport

// Tests aimed at mutants that survived `make mutation` (docs/mutation.md):
// the framing arithmetic, checked against the frames it sizes.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// readWSFrame splits one server frame into its opcode and payload, failing
// unless the header announces exactly the bytes that follow it.
func readWSFrame(t *testing.T, b []byte) (op byte, payload []byte) {
	t.Helper()
	if len(b) < 2 || b[0]&0x80 == 0 || b[1]&0x80 != 0 {
		t.Fatalf("not a final unmasked frame: % x", b[:min(len(b), 4)])
	}
	n, h := int(b[1]), 2
	if n == 126 {
		n, h = int(binary.BigEndian.Uint16(b[2:])), 4
		if n < 126 {
			t.Fatalf("length %d in a 16-bit field", n)
		}
	} else if n == 127 {
		n, h = int(binary.BigEndian.Uint64(b[2:])), 10
		if n <= 0xffff {
			t.Fatalf("length %d in a 64-bit field", n)
		}
	}
	if h+n != len(b) {
		t.Fatalf("header announces %d payload bytes, %d follow", n, len(b)-h)
	}
	return b[0] & 0x0f, b[h:]
}

// dataLen is exactly the size of what appendData writes, at every frame
// header boundary, with and without cursors and holes: WRITE_QUEUE_BYTES
// counts what is written, and the header announces exactly the frame.
func TestDataLenIsWhatAppendDataWrites(t *testing.T) {
	hole := []byte(`"\u0000cursor"`)
	for _, p := range []protocol{protoTransportWS, protoLegacyWS, protoSSE} {
		for _, qid := range [][]byte{[]byte(`"1"`), []byte(`"a longer id"`)} {
			for _, cur := range []string{"", "Y3Vyc29y", strings.Repeat("c", 300)} {
				for holes := range 3 {
					// frames of exactly F payload bytes, at each header boundary
					for _, F := range []int{60, 125, 126, 127, 0xffff, 0x10000, 0x10001} {
						fixed := `{"data":{"a":` + strings.Repeat(string(hole)+`,"b":`, holes) + `""}}`
						x := F - 32 - len(qid) - holes*(len(cur)+2-len(hole)) - len(fixed)
						if x < 0 {
							continue
						}
						pay := []byte(`{"data":{"a":` + strings.Repeat(string(hole)+`,"b":`, holes) + `"` + strings.Repeat("x", x) + `"}}`)
						got := appendData([]byte("prefix"), p, qid, pay, hole, holes, cur)
						got = got[len("prefix"):]
						if n := dataLen(p, qid, pay, holes, len(hole), cur); n != len(got) {
							t.Fatalf("proto %d, %d holes, cursor %d bytes, payload %d: dataLen %d, appendData wrote %d",
								p, holes, len(cur), len(pay), n, len(got))
						}
						want := strings.ReplaceAll(string(pay), string(hole), `"`+cur+`"`)
						if p == protoSSE {
							prefix := ""
							if cur != "" {
								prefix = "id: " + cur + "\n"
							}
							if string(got) != prefix+"event: next\ndata: "+want+"\n\n" {
								t.Fatalf("SSE event %.80q", got)
							}
							continue
						}
						op, body := readWSFrame(t, got)
						typ := "next"
						if p == protoLegacyWS {
							typ = "data"
						}
						if op != opText || len(body) != F || string(body) != `{"id":`+string(qid)+`,"type":"`+typ+`","payload":`+want+`}` {
							t.Fatalf("frame op %d, %d bytes (want %d), body %.80q", op, len(body), F, body)
						}
					}
				}
			}
		}
	}
}

// splice fills exactly holes holes, from the start, wherever they are.
func TestSpliceFillsHolesInOrder(t *testing.T) {
	hole := []byte("@@")
	for _, tc := range []struct {
		payload string
		holes   int
		want    string
	}{
		{"@@", 1, `"c"`},
		{"@@x", 1, `"c"x`},
		{"x@@", 1, `x"c"`},
		{"a@@b@@c", 2, `a"c"b"c"c`},
		{"a@@b@@c", 1, `a"c"b@@c`}, // the second is not a hole of the rendering
		{"a@@b", 0, "a@@b"},
		{"ab", 1, "ab"},
		{"@@@@", 2, `"c""c"`},
	} {
		if got := string(splice([]byte(">"), []byte(tc.payload), hole, tc.holes, "c")); got != ">"+tc.want {
			t.Errorf("splice(%q, %d holes) = %q, want %q", tc.payload, tc.holes, got, ">"+tc.want)
		}
	}
}

// A close frame carries its code and a reason of at most 123 bytes, cut
// on a character boundary; a reason that fits is kept whole.
func TestCloseFrameReason(t *testing.T) {
	for _, reason := range []string{
		"", "bye", strings.Repeat("r", 122), strings.Repeat("r", 123), strings.Repeat("r", 124),
		strings.Repeat("é", 61) + "r",  // 123 bytes
		strings.Repeat("é", 62),        // 124 bytes
		"r" + strings.Repeat("日本", 40), // a 3-byte character across byte 120
		"r" + strings.Repeat("é", 100), // a 2-byte character across byte 120
	} {
		op, body := readWSFrame(t, closeFrame(4409, reason))
		if op != opClose || binary.BigEndian.Uint16(body) != 4409 {
			t.Fatalf("close frame op %d, code % x", op, body[:2])
		}
		got := string(body[2:])
		if len(body) > 125 || !utf8.ValidString(got) {
			t.Fatalf("reason of %d bytes: frame payload of %d bytes, %q", len(reason), len(body), got)
		}
		if len(reason) <= 123 {
			if got != reason {
				t.Fatalf("a %d-byte reason became %q", len(reason), got)
			}
			continue
		}
		if !strings.HasSuffix(got, "...") || !strings.HasPrefix(reason, strings.TrimSuffix(got, "...")) || len(got) < 118 {
			t.Fatalf("a %d-byte reason became %q (%d bytes)", len(reason), got, len(got))
		}
	}
}

// A text frame is a final text frame of exactly the message.
func TestTextFrame(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xffff, 0x10000} {
		msg := bytes.Repeat([]byte("m"), n)
		op, body := readWSFrame(t, textFrame(msg))
		if op != opText || !bytes.Equal(body, msg) {
			t.Fatalf("text frame of %d bytes: op %d, %d bytes", n, op, len(body))
		}
	}
}

// A subscribe message needs a payload object; absent is refused (and does
// not panic).
func TestParseSubscribeWithoutPayload(t *testing.T) {
	for _, in := range []string{`{"type":"subscribe","id":"1"}`, `{"type":"subscribe","id":"1","payload":null}`} {
		if _, problem := parse([]byte(in)); !strings.Contains(problem, "'payload'") {
			t.Errorf("%s: problem %q, want one about 'payload'", in, problem)
		}
	}
	if _, problem := parse([]byte(`{"type":"subscribe","id":"1","payload":{"query":"{ok}","operationName":null}}`)); problem != "" {
		t.Errorf("operationName null: %s", problem)
	}
	if _, problem := parse([]byte(fmt.Sprintf(`{"type":"subscribe","id":"1","payload":{"query":"{ok}","operationName":%q}}`, "A"))); problem != "" {
		t.Errorf("operationName A: %s", problem)
	}
}
