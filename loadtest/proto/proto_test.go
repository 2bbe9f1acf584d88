package proto_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/oshirase/oshirase/loadtest/proto"
)

func TestTopLevel(t *testing.T) {
	msg := []byte(`{"payload":{"data":{"x":{"id":"inner","text":"a\"b"}}},"id":"17","type":"next"}`)
	for key, want := range map[string]string{
		"id":      `"17"`,
		"type":    `"next"`,
		"payload": `{"data":{"x":{"id":"inner","text":"a\"b"}}}`,
		"missing": ``,
	} {
		if got := string(proto.TopLevel(msg, key)); got != want {
			t.Errorf("%s: got %q want %q", key, got, want)
		}
	}
	if proto.TopLevel([]byte(`[1]`), "id") != nil || proto.TopLevel([]byte(`{"id":`), "id") != nil {
		t.Error("malformed input should give nil")
	}
}

func TestParseGraphQL(t *testing.T) {
	text := proto.Text(time.Unix(0, 1234567), 9)
	frame := `{"id":"42","type":"next","payload":{"data":{"onNotificationReceived":{"id":"0190","text":"` + text + `","timestamp":1}}}}`
	cases := []struct {
		kind proto.Kind
		msg  string
		want proto.EventType
		id   int
	}{
		{proto.TransportWS, frame, proto.Data, 42},
		{proto.TransportWS, `{"type":"connection_ack"}`, proto.Ack, 0},
		{proto.TransportWS, `{"type":"ping"}`, proto.Ping, 0},
		{proto.TransportWS, `{"type":"complete","id":"3"}`, proto.Complete, 3},
		{proto.TransportWS, `{"type":"error","id":"5","payload":[{"message":"x"}]}`, proto.Error, 5},
		{proto.TransportWS, `{"id":"1","type":"next","payload":{"errors":[{"message":"no"}]}}`, proto.Error, 1},
		{proto.LegacyWS, `{"type":"ka"}`, proto.KeepAlive, 0},
		{proto.LegacyWS, `{"type":"data","id":"7","payload":{"data":{"onNotificationReceived":{"text":"` + text + `"}}}}`, proto.Data, 7},
	}
	for i, c := range cases {
		var got []proto.Event
		proto.Parse(c.kind, []byte(c.msg), func(e proto.Event) { got = append(got, e) })
		if len(got) != 1 || got[0].Type != c.want || (c.id != 0 && got[0].ID != c.id) {
			t.Fatalf("case %d: %+v", i, got)
		}
		if c.want == proto.Data {
			sent, probe, ok := proto.ReadText(got[0].Text)
			if !ok || probe || sent != 1234567 {
				t.Fatalf("case %d: text %q -> %d %v %v", i, got[0].Text, sent, probe, ok)
			}
		}
	}
}

func TestParseCentrifugo(t *testing.T) {
	msg := "{}\n" +
		`{"id":1,"connect":{"client":"c","version":"6","ping":25,"pong":true}}` + "\n" +
		`{"id":2,"subscribe":{}}` + "\n" +
		`{"id":3,"error":{"code":103,"message":"permission denied"}}` + "\n" +
		`{"push":{"channel":"personal:#u1","pub":{"data":{"id":"x","text":"pr:99:1","timestamp":1}}}}`
	var got []proto.Event
	proto.Parse(proto.Centrifugo, []byte(msg), func(e proto.Event) { got = append(got, e) })
	want := []proto.EventType{proto.Ping, proto.Ack, proto.SubOK, proto.Error, proto.Data}
	if len(got) != len(want) {
		t.Fatalf("got %d events", len(got))
	}
	for i := range want {
		if got[i].Type != want[i] {
			t.Errorf("event %d: type %v want %v", i, got[i].Type, want[i])
		}
	}
	if got[2].ID != 2 || string(got[4].Channel) != "personal:#u1" {
		t.Errorf("id %d channel %q", got[2].ID, got[4].Channel)
	}
	if sent, probe, ok := proto.ReadText(got[4].Text); !ok || !probe || sent != 99 {
		t.Errorf("probe text: %d %v %v", sent, probe, ok)
	}
}

func TestFramesAreJSON(t *testing.T) {
	for _, k := range []proto.Kind{proto.TransportWS, proto.LegacyWS, proto.Centrifugo} {
		for _, f := range [][]byte{proto.InitFrame(k, "tok"), proto.SubscribeFrame(k, 3, "bob", "personal:#bob"), proto.Pong(k)} {
			var v map[string]any
			if err := json.Unmarshal(f, &v); err != nil {
				t.Errorf("%v: %s: %v", k, f, err)
			}
		}
	}
	if k, err := proto.ParseKind("graphql-ws"); err != nil || k != proto.LegacyWS || k.Subprotocol() != "graphql-ws" {
		t.Error("ParseKind graphql-ws")
	}
	if _, err := proto.ParseKind("nope"); err == nil {
		t.Error("ParseKind accepted nonsense")
	}
}

func TestReadTextRejects(t *testing.T) {
	for _, s := range []string{"", "hi", "lt:", "lt:x:1", "zz:1:1"} {
		if _, _, ok := proto.ReadText([]byte(s)); ok {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestResumeFrameAndCursor(t *testing.T) {
	var f struct {
		ID, Type string
		Payload  struct {
			Query     string
			Variables map[string]string
		}
	}
	if err := json.Unmarshal(proto.ResumeFrame(proto.LegacyWS, 7, "u1", "AQID"), &f); err != nil {
		t.Fatal(err)
	}
	if f.ID != "7" || f.Type != "start" || f.Payload.Query != proto.ResumeQuery || f.Payload.Variables["u"] != "u1" || f.Payload.Variables["a"] != "AQID" {
		t.Fatalf("resume frame: %+v", f)
	}
	f.Payload.Variables = nil
	if err := json.Unmarshal(proto.ResumeFrame(proto.TransportWS, 8, "u1", ""), &f); err != nil {
		t.Fatal(err)
	}
	if f.Type != "subscribe" || len(f.Payload.Variables) != 1 {
		t.Fatalf("resume frame without a cursor: %+v", f)
	}
	msg := `{"id":"8","type":"next","payload":{"data":{"onNotificationReceived":{"id":"0190","text":"lt:1:1","timestamp":1,"cursor":"AQIE-_x"}}}}`
	var got []proto.Event
	proto.Parse(proto.TransportWS, []byte(msg), func(e proto.Event) { got = append(got, e) })
	if len(got) != 1 || got[0].Type != proto.Data || string(got[0].Cursor) != "AQIE-_x" || string(got[0].Text) != "lt:1:1" {
		t.Fatalf("%+v", got)
	}
}
