package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"strings"
	"testing"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/auth/authtest"
)

// Seed claims valid until 2100, so that the corpus stays meaningful.
func fuzzClaims(sub, tenant string) map[string]any {
	return map[string]any{"sub": sub, "tenant": tenant, "iat": 1700000000, "exp": 4102444800}
}

// signedWith reports whether raw carries a genuine HMAC of its header and
// claims under secret, recomputed here independently of the verifier and
// of the jwt library: the oracle every accepted token must pass.
func signedWith(raw string, secret []byte) bool {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return false
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var h struct{ Alg string }
	if json.Unmarshal(hb, &h) != nil {
		return false
	}
	var mac hash.Hash
	switch h.Alg {
	case "HS256":
		mac = hmac.New(sha256.New, secret)
	case "HS384":
		mac = hmac.New(sha512.New384, secret)
	case "HS512":
		mac = hmac.New(sha512.New, secret)
	default:
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	mac.Write([]byte(parts[0] + "." + parts[1]))
	return hmac.Equal(sig, mac.Sum(nil))
}

// tamper returns tok with its claims replaced by claims, keeping its
// header and signature: a forged identity under a real signature.
func tamper(tok string, claims map[string]any) string {
	parts := strings.Split(tok, ".")
	b, _ := json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

func fuzzVerifier(f *testing.F, secret []byte) *auth.Verifier {
	v, err := auth.NewVerifier(f.Context(), auth.Config{HMACSecret: secret})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = v.Close() })
	return v
}

// checkAccepted fails t when the verifier accepted raw although raw is not
// signed with secret, or yielded an identity other than its claims say: a
// user token without user or tenant, or a user or tenant the claims do
// not hold.
func checkAccepted(t *testing.T, raw string, id auth.Identity, secret []byte) {
	t.Helper()
	if !signedWith(raw, secret) {
		t.Fatalf("accepted %q as %+v, but it is not signed with the key: signature checking is broken", raw, id)
	}
	if (id.Tenant == "" && !id.Platform) || (id.User == "" && !id.Publisher) {
		t.Fatalf("accepted %q as %+v: no user or tenant", raw, id)
	}
	var claims map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	_ = json.Unmarshal(b, &claims)
	str := func(name string) string { s, _ := claims[name].(string); return s }
	if id.User != str("sub") || id.Tenant != str("tenant") {
		t.Fatalf("accepted claims %s as %+v", b, id)
	}
}

// FuzzVerify checks that no input panics, and that every token the
// verifier accepts is genuinely signed with its key. The seeds — run with
// every go test — include forgeries: claims swapped under a real
// signature, alg none, another key's signature, a stripped or altered
// signature. `go test -fuzz '^FuzzVerify$' ./auth` explores more.
func FuzzVerify(f *testing.F) {
	k := getKeys(f)
	secret := k.hmac.Public.([]byte)
	other := authtest.NewHMACKey(f)
	good := k.hmac.Sign(f, fuzzClaims("bob", "acme"))
	parts := strings.Split(good, ".")
	for _, s := range []string{
		"", ".", "..", "...", "a.b.c", "e30.e30.", "e30.e30.e30",
		good,
		tamper(good, fuzzClaims("alice", "acme")),
		tamper(good, fuzzClaims("bob", "globex")),
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1],
		parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
		parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2] + "AA",
		k.hmac.SignWith(f, "none", nil, fuzzClaims("bob", "acme")),
		k.hmac.SignWith(f, "HS512", nil, fuzzClaims("bob", "acme")),
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS512","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2],
		other.Sign(f, fuzzClaims("bob", "acme")),
		strings.Repeat("eyJ", 100),
	} {
		f.Add(s)
	}
	v := fuzzVerifier(f, secret)
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(t.Context(), raw)
		if err == nil {
			checkAccepted(t, raw, id, secret)
		}
	})
}

// FuzzForgedToken builds tokens from fuzzed header and claims JSON, signed
// in one of four ways — not at all, with another key, with a signature
// copied from a genuine token, or genuinely — so that the fuzzer reaches
// well-formed forgeries rather than base64 noise. Every accepted token must
// be genuinely signed, and yield the user and tenant of its claims.
func FuzzForgedToken(f *testing.F) {
	k := getKeys(f)
	secret := k.hmac.Public.([]byte)
	other := authtest.NewHMACKey(f)
	genuine := k.hmac.Sign(f, fuzzClaims("bob", "acme"))
	copied := genuine[strings.LastIndex(genuine, ".")+1:]
	claims, _ := json.Marshal(fuzzClaims("bob", "acme"))
	for _, header := range []string{`{"alg":"HS256","typ":"JWT"}`, `{"alg":"HS512"}`, `{"alg":"none"}`, `{"alg":"HS256","crit":["x"]}`, `{}`} {
		for mode := range uint8(4) {
			f.Add(header, string(claims), mode)
		}
	}
	f.Add(`{"alg":"HS256"}`, `{"sub":"bob","tenant":"acme","exp":4102444800,"nbf":1}`, uint8(1))
	f.Add(`{"alg":"HS256"}`, `{"sub":"bob","tenant":"","exp":4102444800}`, uint8(3))
	v := fuzzVerifier(f, secret)
	f.Fuzz(func(t *testing.T, header, claims string, mode uint8) {
		enc := base64.RawURLEncoding
		input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
		var sig string
		switch mode % 4 {
		case 1:
			sig = enc.EncodeToString(hmacSum(header, input, other.Public.([]byte)))
		case 2:
			sig = copied
		case 3:
			sig = enc.EncodeToString(hmacSum(header, input, secret))
		}
		raw := input + "." + sig
		id, err := v.Verify(t.Context(), raw)
		if err != nil {
			return
		}
		checkAccepted(t, raw, id, secret)
	})
}

// hmacSum signs input with the HMAC that header's alg names (SHA-256 when
// it names none of them).
func hmacSum(header, input string, secret []byte) []byte {
	var h struct{ Alg string }
	_ = json.Unmarshal([]byte(header), &h)
	newHash := sha256.New
	switch h.Alg {
	case "HS384":
		newHash = sha512.New384
	case "HS512":
		newHash = sha512.New
	}
	mac := hmac.New(newHash, secret)
	mac.Write([]byte(input))
	return mac.Sum(nil)
}
