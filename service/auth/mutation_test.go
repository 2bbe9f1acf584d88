package auth_test

// Tests aimed at mutants that survived `make mutation` (docs/mutation.md):
// each checks one behaviour that a changed comparison would break.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/auth/authtest"
	"github.com/oshirase/oshirase/service/logging/logtest"
)

// A rejection keeps its cause for errors.Is (and logs), beside
// ErrUnauthenticated; one without a cause is still ErrUnauthenticated.
func TestRejectionUnwrapsToItsCause(t *testing.T) {
	k := getKeys(t)
	v := newVerifier(t, auth.Config{HMACSecret: k.hmac.Public.([]byte), Leeway: auth.NoLeeway})
	_, err := v.Verify(t.Context(), k.hmac.Sign(t, user(authtest.Claims("bob", "acme", time.Hour), set("exp", time.Now().Add(-time.Minute).Unix()))))
	wantReject(t, err, "token expired")
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("err = %v: its cause jwt.ErrTokenExpired is lost", err)
	}
	_, err = v.Verify(t.Context(), "")
	wantReject(t, err, "token missing")
	if errors.Is(err, jwt.ErrTokenExpired) || errors.Is(err, jwt.ErrTokenMalformed) {
		t.Fatalf("err = %v: a rejection without a cause unwraps to one", err)
	}
}

// A key set is fetched over https as well as http, and nothing else.
func TestJWKSURLScheme(t *testing.T) {
	k := getKeys(t)
	body, err := json.Marshal(map[string]any{"keys": []any{k.rsa.JWK()}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
	defer srv.Close()
	cfg := jwksConfig(t, srv.URL)
	cfg.HTTPClient = srv.Client()
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("TLS server at %s", srv.URL)
	}
	v := newVerifier(t, cfg)
	if _, err := v.Verify(t.Context(), userToken(t, k.rsa)); err != nil {
		t.Fatalf("token checked against a JWKS fetched over https: %v", err)
	}
	for _, u := range []string{"ftp://idp.example/jwks", "ws://idp.example/jwks", "//idp.example/jwks"} {
		if v, err := auth.NewVerifier(t.Context(), auth.Config{JWKSURL: u}); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
			if v != nil {
				_ = v.Close()
			}
			t.Errorf("JWKS URL %s: err = %v, want not an http(s) URL", u, err)
		}
	}
}

// The verifier logs to the configured logger (a short HMAC secret is
// warned about, a 32-byte one is not), and to nowhere without one.
func TestVerifierLogsToConfiguredLogger(t *testing.T) {
	for _, tt := range []struct {
		n    int
		warn bool
	}{{31, true}, {32, false}, {1, true}, {64, false}} {
		rec := &logtest.Recorder{}
		v := newVerifier(t, auth.Config{HMACSecret: bytes.Repeat([]byte("k"), tt.n), Logger: slog.New(rec)})
		if got := rec.Count("shorter than 32 bytes") > 0; got != tt.warn {
			t.Errorf("a %d-byte secret: warned = %v, want %v", tt.n, got, tt.warn)
		}
		_ = v.Close()
	}
	// Without a Logger, the same warning goes nowhere (and does not panic).
	v := newVerifier(t, auth.Config{HMACSecret: []byte("short")})
	if _, err := v.Verify(t.Context(), ""); err == nil {
		t.Fatal("empty token accepted")
	}
}

// JWT_PUBLIC_KEY carries the PEM itself.
func TestConfigFromEnvPublicKeyText(t *testing.T) {
	k := getKeys(t)
	pemText := string(k.ec.PublicPEM(t))
	cfg, err := auth.ConfigFromEnv(func(name string) string {
		return map[string]string{"JWT_PUBLIC_KEY": "\n" + pemText + "\n"}[name]
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.PublicKeyPEM) != strings.TrimSpace(pemText) || cfg.HMACSecret != nil || cfg.JWKSURL != "" {
		t.Fatalf("config from JWT_PUBLIC_KEY: PublicKeyPEM %q, HMACSecret %q, JWKSURL %q", cfg.PublicKeyPEM, cfg.HMACSecret, cfg.JWKSURL)
	}
	v := newVerifier(t, cfg)
	if _, err := v.Verify(t.Context(), k.ec.Sign(t, authtest.Claims("bob", "acme", time.Hour))); err != nil {
		t.Fatalf("token signed by the key in JWT_PUBLIC_KEY: %v", err)
	}
	// Unset, it leaves the PEM empty.
	cfg, err = auth.ConfigFromEnv(func(name string) string {
		return map[string]string{"JWT_SECRET": "0123456789abcdef0123456789abcdef"}[name]
	})
	if err != nil || cfg.PublicKeyPEM != nil {
		t.Fatalf("JWT_SECRET only: PublicKeyPEM %q, err %v", cfg.PublicKeyPEM, err)
	}
}

// The refresher warns when a refresh fails, and only then.
func TestJWKSRefresherLogsFailuresOnly(t *testing.T) {
	k := getKeys(t)
	srv := authtest.NewJWKSServer(t, k.rsa)
	rec := &logtest.Recorder{}
	cfg := jwksConfig(t, srv.URL)
	cfg.Logger = slog.New(rec)
	cfg.JWKSRefresh = 10 * time.Millisecond
	v := newVerifier(t, cfg)
	deadline := time.Now().Add(5 * time.Second)
	for srv.Fetches() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches in 5s with a 10ms refresh", srv.Fetches())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := rec.Count("refresh failed"); n != 0 {
		t.Fatalf("%d refresh failures logged while every refresh succeeded", n)
	}
	srv.SetBody(http.StatusInternalServerError, []byte("down"))
	rec.WaitFor(t, "JWKS refresh failed")
	if _, err := v.Verify(t.Context(), userToken(t, k.rsa)); err != nil {
		t.Fatalf("the previous keys were not kept: %v", err)
	}
}

// A refetch for an unknown kid that fails is logged; one that succeeds
// (but still lacks the kid) is not.
func TestJWKSRefetchFailureLogged(t *testing.T) {
	k := getKeys(t)
	srv := authtest.NewJWKSServer(t, k.rsa)
	rec := &logtest.Recorder{}
	cfg := jwksConfig(t, srv.URL)
	cfg.Logger = slog.New(rec)
	cfg.JWKSRefetchMin = time.Nanosecond
	v := newVerifier(t, cfg)
	_, err := v.Verify(t.Context(), userToken(t, k.rsa2))
	wantReject(t, err, "unknown key id")
	if srv.Fetches() != 2 || rec.Count("refetch for unknown kid failed") != 0 {
		t.Fatalf("fetches %d (want 2), failures logged %d (want 0)", srv.Fetches(), rec.Count("refetch for unknown kid failed"))
	}
	srv.SetBody(http.StatusBadGateway, nil)
	time.Sleep(time.Millisecond)
	_, err = v.Verify(t.Context(), userToken(t, k.rsa2))
	wantReject(t, err, "unknown key id")
	if srv.Fetches() != 3 || rec.Count("refetch for unknown kid failed") != 1 {
		t.Fatalf("fetches %d (want 3), failures logged %d (want 1)", srv.Fetches(), rec.Count("refetch for unknown kid failed"))
	}
}

// A key set of exactly 1 MiB is read; one byte more is refused.
func TestJWKSSizeLimit(t *testing.T) {
	k := getKeys(t)
	const limit = 1 << 20
	keys, err := json.Marshal(map[string]any{"keys": []any{k.rsa.JWK()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{limit, limit + 1} {
		body := append(bytes.Repeat([]byte(" "), size-len(keys)), keys...)
		srv := authtest.NewJWKSServer(t)
		srv.SetBody(http.StatusOK, body)
		v, err := auth.NewVerifier(t.Context(), jwksConfig(t, srv.URL))
		if size <= limit {
			if err != nil {
				t.Fatalf("a %d-byte key set: %v", size, err)
			}
			_ = v.Close()
			continue
		}
		if err == nil {
			_ = v.Close()
			t.Fatalf("a %d-byte key set was accepted", size)
		}
		if !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("a %d-byte key set: err = %v, want larger than", size, err)
		}
	}
}

// RSA exponents in a JWK: odd, at least 3, at most 4 bytes (leading zero
// bytes included).
func TestJWKSRSAExponent(t *testing.T) {
	k := getKeys(t)
	tok := userToken(t, k.rsa)
	for _, tt := range []struct {
		e      []byte
		usable bool
		verify bool // the token signed with e = 65537 verifies
	}{
		{[]byte{1, 0, 1}, true, true},
		{[]byte{0, 1, 0, 1}, true, true},      // 4 bytes
		{[]byte{0, 0, 1, 0, 1}, false, false}, // 5 bytes: too large
		{[]byte{3}, true, false},              // the least exponent
		{[]byte{2}, false, false},
		{[]byte{4}, false, false}, // even
		{[]byte{1, 0, 0}, false, false},
		{[]byte{1}, false, false},
	} {
		jwk := k.rsa.JWK()
		jwk["e"] = b64(string(tt.e))
		body, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
		srv := authtest.NewJWKSServer(t)
		srv.SetBody(http.StatusOK, body)
		v, err := auth.NewVerifier(t.Context(), jwksConfig(t, srv.URL))
		if !tt.usable {
			if err == nil {
				_ = v.Close()
				t.Errorf("exponent %x: the key was used", tt.e)
			} else if !strings.Contains(err.Error(), "no usable signature key") {
				t.Errorf("exponent %x: err = %v", tt.e, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("exponent %x: %v", tt.e, err)
			continue
		}
		_, err = v.Verify(t.Context(), tok)
		if tt.verify && err != nil {
			t.Errorf("exponent %x: %v", tt.e, err)
		}
		if !tt.verify && err == nil {
			t.Errorf("exponent %x: a token verified against the wrong exponent", tt.e)
		}
		_ = v.Close()
	}
}

// A well-formed token of exactly MaxTokenBytes is read; one byte more is
// refused before it is decoded.
func TestVerifyTokenSizeLimit(t *testing.T) {
	k := getKeys(t)
	v := newVerifier(t, auth.Config{HMACSecret: k.hmac.Public.([]byte)})
	// Find a padding (in a claim and in a header field) that makes the
	// token exactly n bytes: base64 never makes 4k+1 characters, so the
	// header's length is varied too.
	tokenOf := func(n int) string {
		for hp := range 4 {
			for pad := n*3/4 - 200; pad < n*3/4; pad++ {
				tok := k.hmac.SignWith(t, "HS256", map[string]any{"x": strings.Repeat("h", hp)},
					user(authtest.Claims("bob", "acme", time.Hour), set("pad", strings.Repeat("p", pad))))
				if len(tok) == n {
					return tok
				}
				if len(tok) > n {
					break
				}
			}
		}
		t.Fatalf("no token of %d bytes", n)
		return ""
	}
	id, err := v.Verify(t.Context(), tokenOf(auth.MaxTokenBytes))
	if err != nil || id.User != "bob" {
		t.Fatalf("a token of exactly MaxTokenBytes: %+v, %v", id, err)
	}
	_, err = v.Verify(t.Context(), tokenOf(auth.MaxTokenBytes+1))
	wantReject(t, err, "token too large")
}

// The context given to Verify bounds the refetch for an unknown kid: a
// cancelled one fetches nothing new. A nil one is allowed.
func TestVerifyContextBoundsRefetch(t *testing.T) {
	k := getKeys(t)
	srv := authtest.NewJWKSServer(t, k.rsa)
	cfg := jwksConfig(t, srv.URL)
	cfg.JWKSRefetchMin = time.Nanosecond
	v := newVerifier(t, cfg)
	srv.SetKeys(k.rsa, k.rsa2)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tok := userToken(t, k.rsa2)
	_, err := v.Verify(cancelled, tok)
	wantReject(t, err, "unknown key id")
	var none context.Context // Verify documents nil as allowed
	time.Sleep(time.Millisecond)
	if _, err := v.Verify(none, tok); err != nil {
		t.Fatalf("with a nil context, the refetched key: %v", err)
	}
}
