package wsconn

import (
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
