package wsconn

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string // canonical form, when valid
		problem string
	}{
		{`{"type":"connection_init"}`, `{"type":"connection_init"}`, ""},
		{`{"type":"connection_init","payload":null,"extra":1}`, `{"type":"connection_init"}`, ""},
		{`{"type":"connection_init","payload":{"Authorization":"Bearer x"}}`, `{"type":"connection_init","payload":{"Authorization":"Bearer x"}}`, ""},
		{`{"type":"ping","id":7}`, `{"type":"ping"}`, ""},
		{`{"type":"subscribe","id":"1","payload":{"query":"{ok}","variables":null,"operationName":"A","extensions":{}}}`,
			`{"id":"1","type":"subscribe","payload":{"query":"{ok}","variables":null,"operationName":"A","extensions":{}}}`, ""},
		{`{"type":"complete","id":"1","payload":{}}`, `{"id":"1","type":"complete"}`, ""},
		{`null`, "", "JSON object"},
		{`"x"`, "", "JSON object"},
		{`{"type":null}`, "", "'type' property to be a string"},
		{`{"type":"ping","payload":[]}`, "", "'payload'"},
		{`{"type":"subscribe","id":1,"payload":{"query":"{ok}"}}`, "", "'id'"},
		{`{"type":"subscribe","id":"1","payload":"{ok}"}`, "", "'payload'"},
		{`{"type":"subscribe","id":"1","payload":{"query":null}}`, "", "'query'"},
		{`{"type":"subscribe","id":"1","payload":{"query":"{ok}","operationName":1}}`, "", "'operationName'"},
		{`{"type":"subscribe","id":"1","payload":{"query":"{ok}","extensions":"x"}}`, "", "'extensions'"},
		{`{"type":"stop","id":"1"}`, "", `"stop"`},
	} {
		m, problem := parse([]byte(tc.in))
		switch {
		case tc.problem == "" && problem != "":
			t.Errorf("%s: invalid (%s), want valid", tc.in, problem)
		case tc.problem != "" && !strings.Contains(problem, tc.problem):
			t.Errorf("%s: problem %q, want one mentioning %q", tc.in, problem, tc.problem)
		case tc.problem == "" && string(encode(m)) != tc.want:
			t.Errorf("%s: canonical %s, want %s", tc.in, encode(m), tc.want)
		}
	}
}

func TestCloseCodeMapping(t *testing.T) {
	for _, tc := range []struct {
		acked      bool
		code       int
		reason     string
		wantCode   int
		wantReason string
	}{
		{false, 1002, "connection initialisation timeout", 4408, "Connection initialisation timeout"},
		{false, 1000, "terminated", 4403, "Forbidden"},
		{false, 1000, "token expired", 4403, "token expired"},
		{false, 4403, "no", 4403, "no"},
		{true, 1002, "unexpected message", 4400, "unexpected message"},
		{true, 1000, "terminated", 1001, "terminated"},
		{true, 1013, "slow", 1013, "slow"},
	} {
		s := newSession()
		s.acked = tc.acked
		code, reason := s.closeCode(tc.code, tc.reason)
		if code != tc.wantCode || reason != tc.wantReason {
			t.Errorf("acked=%v %d %q → %d %q, want %d %q", tc.acked, tc.code, tc.reason, code, reason, tc.wantCode, tc.wantReason)
		}
	}
}

// Outgoing messages carry the client's ids; nothing follows the end of an
// operation.
func TestOutbound(t *testing.T) {
	s := newSession()
	out := func(in string) string {
		t.Helper()
		b, err := s.outbound([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := out(`{"type":"connection_ack"}`); got != `{"type":"connection_ack"}` || !s.acked {
		t.Fatalf("ack: %s, acked=%v", got, s.acked)
	}
	v := s.inbound([]byte(`{"type":"subscribe","id":"client-id","payload":{"query":"{ok}"}}`))
	if string(v.forward) != `{"id":"1","type":"subscribe","payload":{"query":"{ok}"}}` {
		t.Fatalf("forwarded %s", v.forward)
	}
	if got := out(`{"payload":{"data":{}},"id":"1","type":"next"}`); got != `{"id":"client-id","type":"next","payload":{"data":{}}}` {
		t.Fatalf("next: %s", got)
	}
	if got := out(`{"payload":[{"message":"x"}],"id":"1","type":"error"}`); got != `{"id":"client-id","type":"error","payload":[{"message":"x"}]}` {
		t.Fatalf("error: %s", got)
	}
	if got := out(`{"id":"1","type":"complete"}`); got != "" {
		t.Fatalf("complete after error sent: %s", got)
	}
	if len(s.byClient)+len(s.byServer) != 0 {
		t.Fatalf("operations left: %v %v", s.byClient, s.byServer)
	}
}

// split reads gqlgen's frames as a JSON decoder would, and declines any
// other shape.
func TestSplit(t *testing.T) {
	for _, in := range []string{
		`{"type":"connection_ack"}`,
		`{"payload":{"a":1},"type":"connection_ack"}`,
		`{"id":"12","type":"complete"}`,
		`{"payload":{"data":{"n":"\"id\":\"1\""}},"id":"7","type":"next"}`,
		`{"payload":[{"message":"x"}],"id":"1","type":"error"}`,
		`{"payload":{"x":"}"},"type":"pong"}`,
	} {
		m, ok := split([]byte(in))
		var want message
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if !ok || m.ID != want.ID || m.Type != want.Type || string(m.Payload) != string(want.Payload) {
			t.Errorf("%s: split %v %+v, want %+v", in, ok, m, want)
		}
	}
	for _, in := range []string{
		``, `{}`, `{"type":1}`, `{"id":"a","type":"next"}`,
		`{"payload":{},"id":"a b","type":"next"}`,
		`{"payload":"1","type":"next"}`,
		`{"type":"next","payload":{}}`,
		`{"payload":{},"id":"1","type":"next","x":1}`,
	} {
		if m, ok := split([]byte(in)); ok {
			t.Errorf("%s: split as %+v, want declined", in, m)
		}
	}
}

func BenchmarkOutbound(b *testing.B) {
	s := newSession()
	s.inbound([]byte(`{"type":"connection_init"}`))
	s.acked = true
	s.inbound([]byte(`{"type":"subscribe","id":"4f1c2a9e-client","payload":{"query":"subscription { notices }"}}`))
	frame := []byte(`{"payload":{"data":{"notices":{"id":"01JD7Z","title":"Your order has shipped","body":"Parcel 1Z999 left the depot at 14:02 and should arrive tomorrow.","createdAt":"2026-11-26T19:30:00Z"}}},"id":"1","type":"next"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.outbound(frame); err != nil {
			b.Fatal(err)
		}
	}
}
