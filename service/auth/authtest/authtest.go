// Package authtest makes keys, signed tokens and a live JWKS endpoint for
// tests of code that uses package auth. Any module's tests may import it.
package authtest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Key is a signing key with the kid and alg its tokens carry.
type Key struct {
	KID string
	Alg string // "HS256", "RS256", "ES256" or "EdDSA"
	// Signer is the private key: a crypto.Signer, or the secret ([]byte)
	// for HS256.
	Signer any
	// Public is what a verifier needs: the public key, or the secret for
	// HS256.
	Public any
}

// NewHMACKey returns a random 32-byte HS256 secret.
func NewHMACKey(tb testing.TB) *Key {
	tb.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	return &Key{Alg: "HS256", Signer: secret, Public: secret}
}

// NewRSAKey returns a 2048-bit RS256 key.
func NewRSAKey(tb testing.TB, kid string) *Key {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatalf("authtest: %v", err)
	}
	return &Key{KID: kid, Alg: "RS256", Signer: k, Public: &k.PublicKey}
}

// NewECKey returns a P-256 ES256 key.
func NewECKey(tb testing.TB, kid string) *Key {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("authtest: %v", err)
	}
	return &Key{KID: kid, Alg: "ES256", Signer: k, Public: &k.PublicKey}
}

// NewEd25519Key returns an EdDSA key.
func NewEd25519Key(tb testing.TB, kid string) *Key {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatalf("authtest: %v", err)
	}
	return &Key{KID: kid, Alg: "EdDSA", Signer: priv, Public: pub}
}

// Claims returns the claims of a user token for sub in tenant, valid for
// ttl: sub, tenant, iat and exp. Add or delete entries freely.
func Claims(sub, tenant string, ttl time.Duration) map[string]any {
	now := time.Now()
	return map[string]any{
		"sub":    sub,
		"tenant": tenant,
		"iat":    now.Unix(),
		"exp":    now.Add(ttl).Unix(),
	}
}

// Sign returns a compact token with claims, signed by k, whose header
// carries k.KID when it is set.
func (k *Key) Sign(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	return k.SignWith(tb, k.Alg, nil, claims)
}

// SignWith signs claims as alg with k.Signer and extra header fields — for
// tests of what a verifier must refuse. alg "none" makes an unsigned token.
func (k *Key) SignWith(tb testing.TB, alg string, header map[string]any, claims map[string]any) string {
	tb.Helper()
	method := jwt.GetSigningMethod(alg)
	if method == nil {
		tb.Fatalf("authtest: unknown alg %q", alg)
	}
	t := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	if k.KID != "" {
		t.Header["kid"] = k.KID
	}
	for name, v := range header {
		if v == nil {
			delete(t.Header, name)
		} else {
			t.Header[name] = v
		}
	}
	var key any = k.Signer
	if alg == "none" {
		key = jwt.UnsafeAllowNoneSignatureType
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("authtest: sign %s: %v", alg, err)
	}
	return s
}

// PublicPEM returns the public key as a PEM "PUBLIC KEY" block.
func (k *Key) PublicPEM(tb testing.TB) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		tb.Fatalf("authtest: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// JWK returns the public key as a JSON Web Key (RFC 7517), with kid, alg
// and use "sig".
func (k *Key) JWK() map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"kid": k.KID, "alg": k.Alg, "use": "sig"}
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(pub.N.Bytes())
		m["e"] = b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		b, _ := pub.Bytes() // 0x04 || x || y
		size := (len(b) - 1) / 2
		m["kty"], m["crv"] = "EC", pub.Curve.Params().Name
		m["x"], m["y"] = b64(b[1:1+size]), b64(b[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(pub)
	case []byte:
		m["kty"], m["k"] = "oct", b64(pub)
	}
	return m
}

// JWKSServer serves a JWKS over a real HTTP server, closed by tb.Cleanup.
// Its key set can be swapped at any time, to test rotation.
type JWKSServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	fetches atomic.Int64
}

// NewJWKSServer starts a server publishing keys at its URL (any path).
func NewJWKSServer(tb testing.TB, keys ...*Key) *JWKSServer {
	tb.Helper()
	s := &JWKSServer{status: http.StatusOK}
	s.SetKeys(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

func (s *JWKSServer) serve(w http.ResponseWriter, _ *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	body, status := s.body, s.status
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// SetKeys replaces the published set.
func (s *JWKSServer) SetKeys(keys ...*Key) {
	set := struct {
		Keys []map[string]any `json:"keys"`
	}{Keys: []map[string]any{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.JWK())
	}
	body, _ := json.Marshal(set)
	s.SetBody(http.StatusOK, body)
}

// SetBody makes the server answer with status and a raw body, to test
// broken key servers.
func (s *JWKSServer) SetBody(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

// Fetches is how many requests the server has answered.
func (s *JWKSServer) Fetches() int { return int(s.fetches.Load()) }
