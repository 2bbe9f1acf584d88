package transport

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
		var qid []byte
		if m.ID != "" {
			qid = marshal(m.ID)
		}
		switch {
		case tc.problem == "" && problem != "":
			t.Errorf("%s: invalid (%s), want valid", tc.in, problem)
		case tc.problem != "" && !strings.Contains(problem, tc.problem):
			t.Errorf("%s: problem %q, want one mentioning %q", tc.in, problem, tc.problem)
		case tc.problem == "" && string(message(m.Type, qid, m.Payload)) != tc.want:
			t.Errorf("%s: canonical %s, want %s", tc.in, message(m.Type, qid, m.Payload), tc.want)
		}
	}
}
