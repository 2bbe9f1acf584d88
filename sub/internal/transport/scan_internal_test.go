package transport

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"github.com/oshirase/oshirase/service/gqlserve"
)

// fastSeeds are messages and payloads the fast path should take, and
// near misses it must leave to the slow path or read exactly as it does.
var fastSeeds = []string{
	`{"id":"1","type":"subscribe","payload":{"query":"subscription ($u: String!) {\n  onNotificationReceived(userName: $u) {\n    id\n    text\n  }\n}","variables":{"u":"bob","n":12345678901234567890,"f":1.5e3,"a":[true,false,null,{}]},"operationName":null,"extensions":{}}}`,
	`{"type":"subscribe","id":"x","payload":{"query":"{ok}","operationName":"A","extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}}`,
	` { "type" : "subscribe" , "id" : "1" , "payload" : { "query" : "\"\\\/\b\f\n\r\t" } } `,
	`{"type":"connection_init","payload":{"Authorization":"Bearer x"}}`,
	`{"type":"ping","payload":null}`, `{"type":"pong"}`, `{"type":"complete","id":"1","payload":[1]}`,
	`{"type":"subscribe","id":"1","payload":{"query":"{a}","Query":"{b}"}}`,
	`{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":{"a":1},"variables":{"b":2}}}`,
	`{"type":"subscribe","id":"1","payload":{"query":"{a}","variableſ":{"b":2}}}`,
	`{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":null,"variables":{"b":2}}}`,
	`{"type":"subscribe","id":"1","type":"complete"}`,
	`{"type":"subscribe","id":"\u0031","payload":{"query":"{a}"}}`,
	`{"type":"subscribe","id":"1","payload":{"query":"é\u00e9"}}`,
	`{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":{"x":01}}}`,
	`{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":{"x":-0.0e-0}}}`,
	`{"type":"subscribe","id":"1","payload":{"query":"{a}"}} x`,
	`{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":[]}}`,
	`{"type":"subscribe","id":"","payload":{"query":"{a}"}}`,
	"{\"type\":\"subscribe\",\"id\":\"1\",\"payload\":{\"query\":\"\xff\"}}",
	`{"type":"next","id":"1","payload":{}}`, `null`, `{}`, `[]`, `{"type":1}`,
}

// FuzzParseFast: a message parseFast takes, parseSlow takes too, and reads
// the same; and its subscribe params are what the slow path makes of the
// payload (gqlserve.DecodeParams, itself held to encoding/json by
// FuzzParamsFast).
func FuzzParseFast(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := parseFast(data)
		if !ok {
			return
		}
		slow, problem := parseSlow(data)
		if problem != "" {
			t.Fatalf("%q: fast path took %+v, slow path refused: %s", data, fast, problem)
		}
		if fast.ID != slow.ID || fast.Type != slow.Type || !bytes.Equal(fast.Payload, slow.Payload) || (fast.Payload == nil) != (slow.Payload == nil) {
			t.Fatalf("%q: fast path read %+v, slow path %+v", data, fast, slow)
		}
		if fast.Type != "subscribe" {
			if fast.params != nil {
				t.Fatalf("%q: params for a %s", data, fast.Type)
			}
			return
		}
		want, err := gqlserve.DecodeParams(slow.Payload)
		if err != nil || !reflect.DeepEqual(fast.params, want) {
			t.Fatalf("%q: fast params %+v, slow %+v (%v)", data, fast.params, want, err)
		}
	})
}

// TestFastPathTakesWhatClientsSend: the messages graphql-ws and Apollo
// send, and SSE bodies, go the fast way (the point of it); the near
// misses above do not.
func TestFastPathTakesWhatClientsSend(t *testing.T) {
	for _, s := range fastSeeds[:7] {
		if _, ok := parseFast([]byte(s)); !ok {
			t.Errorf("%s: not taken", s)
		}
	}
	for _, s := range fastSeeds[7:] {
		fast, ok := parseFast([]byte(s))
		if !ok {
			continue
		}
		slow, problem := parseSlow([]byte(s))
		if problem != "" || fast.Type != slow.Type || fast.ID != slow.ID || !bytes.Equal(fast.Payload, slow.Payload) {
			t.Errorf("%s: fast %+v, slow %+v %s", s, fast, slow, problem)
		}
	}
	for _, s := range []string{`{"query":"subscription { onNotificationReceived(userName: \"bob\") { id text } }","variables":{}}`, `{"query":"{a}","operationName":"A"}`} {
		if _, ok := gqlserve.ParamsFast([]byte(s), false); !ok {
			t.Errorf("SSE body %s: not taken", s)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	data := []byte(`{"id":"1","type":"subscribe","payload":{"query":"subscription($u: String!) { onNotificationReceived(userName: $u) { id text timestamp } }","variables":{"u":"user12345"}}}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			m, _ := parse(data)
			if m.params == nil {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("slow", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			m, _ := parseSlow(data)
			var p graphql.RawParams // as encoding/json alone reads it
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
