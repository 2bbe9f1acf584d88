package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzMembers: an object Members takes whole is valid JSON, and encoding/json
// reads the same members from it: every key, and each value's span (the
// last one for a key given twice).
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{"a":"x","b":1.5e3,"c":[true,false,null,{}],"d":{"e":"\"\\\/\b\f\n\r\t"}}`,
		` { "a" : -0.0e-0 , "a" : "again" } `,
		`{"é":"é","k":01}`, `{"k":"\u0041"}`, `{"k\n":1}`, `{}`, `{"a":[1,]}`, `{"a":1,}`, "{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := string(data)
		got := map[string]string{}
		end, ok := Members(s, SkipSpace(s, 0), func(key string, start, end int) bool {
			got[key] = s[start:end]
			return true
		})
		if !ok || SkipSpace(s, end) != len(s) {
			return
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("%q: taken, but encoding/json refuses it: %v", data, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: members %v, encoding/json %v", data, got, want)
		}
		for k, v := range want {
			if !sameJSON(got[k], v) {
				t.Fatalf("%q: member %q is %s, encoding/json %s", data, k, got[k], v)
			}
		}
	})
}

// FuzzElements: an array Elements takes whole is valid JSON, and
// encoding/json reads the same elements from it, in order.
func FuzzElements(f *testing.F) {
	for _, s := range []string{
		`[{"scope":"PERSON","to":"u1","text":"x"},{"scope":"COMPANY","text":"\"y\""}]`,
		` [ 1 , -0.0e-0 , "a" , [ ] , { } , null , true ] `,
		`[]`, `[1,]`, `[,1]`, `[1 2]`, `["\u0041"]`, "[\"\xff\"]", `[[[[[[[[[[1]]]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := string(data)
		var got []string
		end, ok := Elements(s, SkipSpace(s, 0), func(start, end int) bool {
			got = append(got, s[start:end])
			return true
		})
		if !ok || SkipSpace(s, end) != len(s) {
			return
		}
		var want []json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("%q: taken, but encoding/json refuses it: %v", data, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: elements %q, encoding/json %q", data, got, want)
		}
		for i, v := range want {
			if !sameJSON(got[i], v) {
				t.Fatalf("%q: element %d is %s, encoding/json %s", data, i, got[i], v)
			}
		}
	})
}

// sameJSON reports whether the span a scanner gave and what encoding/json
// read are the same JSON, whitespace aside.
func sameJSON(span string, raw json.RawMessage) bool {
	var a, b bytes.Buffer
	return json.Compact(&a, []byte(span)) == nil && json.Compact(&b, raw) == nil && a.String() == b.String()
}

// String takes a string only as encoding/json reads it.
func TestString(t *testing.T) {
	for _, c := range []struct {
		in      string
		escapes bool
		want    string
		ok      bool
	}{
		{`"plain"`, false, "plain", true},
		{`"a\"b"`, false, "", false},
		{`"a\"b\\\/\b\f\n\r\t"`, true, "a\"b\\/\b\f\n\r\t", true},
		{`"\u0041"`, true, "", false},
		{"\"\xff\"", true, "", false},
		{"\"a\nb\"", true, "", false},
		{`"unterminated`, true, "", false},
		{`"é"`, false, "é", true},
	} {
		got, end, ok := String(c.in, 0, c.escapes)
		if ok != c.ok || ok && (got != c.want || end != len(c.in)) {
			t.Errorf("String(%q, %v) = %q, %d, %v; want %q, %v", c.in, c.escapes, got, end, ok, c.want, c.ok)
		}
	}
}
