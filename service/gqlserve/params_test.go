package gqlserve

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// FuzzParamsFast: a request ParamsFast takes decodes the same through
// encoding/json (decodeParamsSlow); with requireQuery, its query is a
// string.
func FuzzParamsFast(f *testing.F) {
	for _, s := range []string{
		`{"query":"subscription ($u: String!) {\n  onNotificationReceived(userName: $u) {\n    id\n    text\n  }\n}","variables":{"u":"bob","n":12345678901234567890,"f":1.5e3,"a":[true,false,null,{}]},"operationName":null,"extensions":{}}`,
		`{"query":"{ok}","operationName":"A","extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}`,
		` { "query" : "\"\\\/\b\f\n\r\t" } `,
		`{"query":"{a}","Query":"{b}"}`,
		`{"query":"{a}","variables":{"a":1},"variables":{"b":2}}`,
		`{"query":"{a}","variableſ":{"b":2}}`,
		`{"query":"{a}","variables":null,"variables":{"b":2}}`,
		`{"query":"é\u00e9"}`,
		`{"query":"{a}","variables":{"x":01}}`,
		`{"query":"{a}","variables":{"x":-0.0e-0}}`,
		`{"query":"{a}"} x`,
		`{"query":"{a}","variables":[]}`,
		`{"query":null}`, `{"variables":{}}`,
		"{\"query\":\"\xff\"}",
		`null`, `{}`, `[]`,
		`{"query":"m","variables":{"in":[{"scope":"PERSON","to":"u1","text":"a\"b"},{"scope":"COMPANY","text":"c","to":null,"n":[1,[2,{}],[]]}]}}`,
		`{"query":"m","variables":{"in":[{"text":"\u00e9"}]}}`,
		`{"query":"m","variables":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":[[[1]]]}}}}}}}}}}}`,
		`{"query":"m","variables":{"in":[{"k":1,"k":2},{"k":[1,]}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, requireQuery := range []bool{false, true} {
			fast, ok := ParamsFast(data, requireQuery)
			if !ok {
				continue
			}
			want, err := decodeParamsSlow(data)
			if err != nil || !reflect.DeepEqual(fast, want) {
				t.Fatalf("%q (requireQuery %v): fast %+v, slow %+v (%v)", data, requireQuery, fast, want, err)
			}
			var fields map[string]json.RawMessage
			if requireQuery && (json.Unmarshal(data, &fields) != nil || len(fields["query"]) == 0 || fields["query"][0] != '"') {
				t.Fatalf("%q: taken without a query", data)
			}
		}
	})
}

// FuzzDecodeParams: a request body (POST, SSE) or a subscribe payload
// decodes to a GraphQL request or is refused, never panics; what decodes
// keeps its variables' numbers exact (json.Number) and survives a round
// trip through JSON unchanged.
func FuzzDecodeParams(f *testing.F) {
	for _, s := range []string{
		`{"query":"subscription{onNotificationReceived(userName:\"bob\"){id text}}"}`,
		`{"query":"query($n:Int){a(n:$n)}","variables":{"n":12345678901234567890},"operationName":"A","extensions":{"persistedQuery":{"version":1}}}`,
		`{"query":"{ok}","variables":{"f":1e400}}`,
		`{"query":"{ok}"} trailing`,
		`{"query":null,"variables":null}`,
		`null`, `[]`, `"x"`, `{"query":1}`, `{"variables":[]}`, ``, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodeParams(data)
		if err != nil {
			if p != nil {
				t.Fatalf("%q: refused (%v) with params", data, err)
			}
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("%q: decoded params do not marshal: %v", data, err)
		}
		again, err := DecodeParams(b)
		if err != nil {
			t.Fatalf("%q: re-encoded as %s, which does not decode: %v", data, b, err)
		}
		if !reflect.DeepEqual(p, again) {
			t.Fatalf("%q: round trip through %s changed %+v into %+v", data, b, p, again)
		}
		var nums func(v any)
		nums = func(v any) {
			switch v := v.(type) {
			case float64:
				t.Fatalf("%q: a number decoded as float64 %v", data, v)
			case map[string]any:
				for _, e := range v {
					nums(e)
				}
			case []any:
				for _, e := range v {
					nums(e)
				}
			}
		}
		nums(p.Variables)
		nums(p.Extensions)
	})
}

// A sendNotification request and a publishBatch of 1,000 as backends send
// them, through the one-pass reader and through encoding/json.
func BenchmarkDecodeParams(b *testing.B) {
	single := []byte(`{"query":"mutation($to: String!, $text: String!) { sendNotification(to: $to, text: $text) { receivedUsers } }","variables":{"to":"user-1234","text":"order 1234 shipped"}}`)
	var in []string
	for i := range 1000 {
		in = append(in, fmt.Sprintf(`{"scope":"PERSON","to":"u%d","text":"order %d shipped"}`, i, i))
	}
	batch := []byte(`{"query":"mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { receivedUsers } }","variables":{"in":[` + strings.Join(in, ",") + `]}}`)
	for _, body := range []struct {
		name string
		data []byte
	}{{"sendNotification", single}, {"publishBatch-1000", batch}} {
		b.Run(body.name+"/DecodeParams", func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := DecodeParams(body.data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(body.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := decodeParamsSlow(body.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
