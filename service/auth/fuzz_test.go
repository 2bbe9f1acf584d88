package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/service/auth"
)

// FuzzVerify checks that no input panics or is accepted unsigned. Its seeds
// run with every go test; `go test -fuzz FuzzVerify ./auth` explores more.
func FuzzVerify(f *testing.F) {
	k := getKeys(f)
	for _, s := range []string{
		"", ".", "..", "...", "a.b.c", "e30.e30.", "e30.e30.e30",
		k.hmac.Sign(f, map[string]any{"sub": "bob", "tenant": "acme", "exp": time.Now().Add(time.Hour).Unix()}),
		strings.Repeat("eyJ", 100),
	} {
		f.Add(s)
	}
	v, err := auth.NewVerifier(f.Context(), auth.Config{HMACSecret: k.hmac.Public.([]byte)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = v.Close() })
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(t.Context(), raw)
		if err == nil && (id.Tenant == "" || id.User == "") {
			t.Fatalf("accepted %q as %+v", raw, id)
		}
	})
}
