package fleet

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestLayout(t *testing.T) {
	l := Layout{Subs: 10, Users: 4, SubsPerConn: 3, UserPrefix: "u"}
	if l.Conns() != 4 {
		t.Fatalf("conns %d", l.Conns())
	}
	if f, e := l.SubsOf(3); f != 9 || e != 10 {
		t.Fatalf("last conn holds %d..%d", f, e)
	}
	if l.User(l.UserOf(9)) != "u1" {
		t.Fatalf("sub 9 is %s", l.User(l.UserOf(9)))
	}
	parts := Layout{Subs: 100001, Users: 100001, SubsPerConn: 6}.Split(15000)
	total := 0
	for i, p := range parts {
		if p[1]-p[0] > 15000 {
			t.Fatalf("part %d too big: %v", i, p)
		}
		if i > 0 && p[0] != parts[i-1][1] {
			t.Fatalf("gap between parts %v", parts)
		}
		total += p[1] - p[0]
	}
	if total != 16667 || len(parts) != 2 {
		t.Fatalf("parts %v total %d", parts, total)
	}
}

func TestToken(t *testing.T) {
	tok := Token("s3cret", "bob")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil || claims["sub"] != "bob" {
		t.Fatalf("claims %v %v", claims, err)
	}
	if channelOf("personal:#%s", "bob") != "personal:#bob" {
		t.Fatal("channelOf")
	}
}
