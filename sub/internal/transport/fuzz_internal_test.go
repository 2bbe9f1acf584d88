package transport

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParse: any bytes a graphql-transport-ws client sends are a message
// in canonical form or refused with a reason (the close reason of 4400);
// never both, never neither. A message that parses has a type of the
// protocol and, where the type needs one, a non-empty id; its canonical
// form, framed as the server frames messages, parses back to the very same
// message, and its id and payload are those of the input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"type":"connection_init"}`,
		`{"type":"connection_init","payload":{"Authorization":"Bearer x"}}`,
		`{"type":"ping","payload":{"a":[1,2]},"id":7}`,
		`{"type":"pong"}`,
		`{"id":"1","type":"subscribe","payload":{"query":"subscription{onNotificationReceived(userName:\"bob\"){id}}","variables":{"u":"bob"},"operationName":null,"extensions":{}}}`,
		`{"id":"\u00e9\ud83d\ude00","type":"complete","payload":[1]}`,
		`{"type":"subscribe","id":"1","payload":{"query":1}}`,
		`{"type":"subscribe","id":"","payload":{"query":"{ok}"}}`,
		`{"type":"next","id":"1","payload":{}}`,
		`{"type":"start","id":"1"}`,
		`{"type":null}`,
		`{"type":"ping","type":"subscribe"}`,
		`[]`, `null`, `{`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, problem := parse(data)
		if problem != "" {
			if !reflect.DeepEqual(m, msg{}) {
				t.Fatalf("%q: refused (%s) with a message %+v", data, problem, m)
			}
			return
		}
		switch m.Type {
		case "connection_init", "connection_ack", "ping", "pong":
			if m.ID != "" {
				t.Fatalf("%q: %s with an id %q", data, m.Type, m.ID)
			}
			if m.Payload != nil && !isObject(m.Payload) {
				t.Fatalf("%q: %s payload %s is not an object", data, m.Type, m.Payload)
			}
		case "subscribe", "next", "error", "complete":
			if m.ID == "" {
				t.Fatalf("%q: %s without an id", data, m.Type)
			}
			var in map[string]json.RawMessage // keys matched exactly, as parse does
			var id string
			if err := json.Unmarshal(data, &in); err != nil || json.Unmarshal(in["id"], &id) != nil || id != m.ID {
				t.Fatalf("%q: id %q, the input's is %s (%v)", data, m.ID, in["id"], err)
			}
		default:
			t.Fatalf("%q: accepted type %q", data, m.Type)
		}
		if m.Type == "subscribe" {
			var p map[string]json.RawMessage
			var q string
			if err := json.Unmarshal(m.Payload, &p); err != nil || p["query"] == nil || json.Unmarshal(p["query"], &q) != nil {
				t.Fatalf("%q: subscribe payload %s without a query string (%v)", data, m.Payload, err)
			}
		}
		if m.Type == "complete" && m.Payload != nil {
			t.Fatalf("%q: complete keeps a payload", data)
		}
		var qid []byte
		if m.ID != "" {
			qid = marshal(m.ID)
		}
		canonical := message(m.Type, qid, m.Payload)
		if !json.Valid(canonical) {
			t.Fatalf("%q: canonical form %q is not JSON", data, canonical)
		}
		again, problem := parse(canonical)
		if problem != "" {
			t.Fatalf("%q: canonical form %s refused: %s", data, canonical, problem)
		}
		if again.ID != m.ID || again.Type != m.Type || !bytes.Equal(again.Payload, m.Payload) {
			t.Fatalf("%q: canonical form %s parses to %+v, not %+v", data, canonical, again, m)
		}
		if frame := textFrame(canonical); !bytes.Equal(frame[len(frame)-len(canonical):], canonical) || len(frame) != wsHeaderLen(len(canonical))+len(canonical) {
			t.Fatalf("%q: frame of %d bytes for a message of %d", data, len(frame), len(canonical))
		}
	})
}
