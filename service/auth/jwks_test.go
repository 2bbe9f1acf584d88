package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/auth/authtest"
)

func jwksConfig(t *testing.T, url string) auth.Config {
	return auth.Config{
		JWKSURL:        url,
		JWKSRefresh:    time.Hour, // tests that want the refresher shorten it
		JWKSRefetchMin: time.Hour,
		Logger:         slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
}

func userToken(t *testing.T, k *authtest.Key) string {
	t.Helper()
	return k.Sign(t, authtest.Claims("bob", "acme", time.Hour))
}

func TestJWKSVerifies(t *testing.T) {
	k := getKeys(t)
	srv := authtest.NewJWKSServer(t, k.rsa, k.ec, k.ed)
	v := newVerifier(t, jwksConfig(t, srv.URL))
	claims := authtest.Claims("bob", "acme", time.Hour)
	tokens := map[string]string{
		"RS256":        k.rsa.Sign(t, claims),
		"ES256":        k.ec.Sign(t, claims),
		"EdDSA":        k.ed.Sign(t, claims),
		"RS256 no kid": k.rsa.SignWith(t, "RS256", map[string]any{"kid": nil}, claims),
	}
	for name, tok := range tokens {
		id, err := v.Verify(t.Context(), tok)
		if err != nil || id.User != "bob" || id.Tenant != "acme" {
			t.Errorf("%s: identity %+v, err %v", name, id, err)
		}
	}
}

func TestJWKSRejects(t *testing.T) {
	k := getKeys(t)
	oct := authtest.NewHMACKey(t)
	oct.KID = "oct-1"
	srv := authtest.NewJWKSServer(t, k.rsa, k.ec, oct)
	v := newVerifier(t, jwksConfig(t, srv.URL))
	claims := authtest.Claims("bob", "acme", time.Hour)
	confused := &authtest.Key{Alg: "HS256", KID: "rsa-1", Signer: k.rsa.PublicPEM(t)}
	tests := []struct {
		name, token, reason string
	}{
		{"HS256 signed with the RSA public key", confused.Sign(t, claims), "algorithm not allowed"},
		{"HS256 with a JWKS oct key", oct.Sign(t, claims), "algorithm not allowed"},
		{"ES256 naming the RSA kid", k.ec.SignWith(t, "ES256", map[string]any{"kid": "rsa-1"}, claims), "algorithm not allowed for key"},
		{"RS256 naming the EC kid", k.rsa.SignWith(t, "RS256", map[string]any{"kid": "ec-1"}, claims), "algorithm not allowed for key"},
		{"RS384 against an RS256 JWK", k.rsa.SignWith(t, "RS384", nil, claims), "algorithm not allowed for key"},
		{"alg none", k.rsa.SignWith(t, "none", nil, claims), "algorithm not allowed"},
		{"EdDSA without kid, no Ed25519 key", k.ed.SignWith(t, "EdDSA", map[string]any{"kid": nil}, claims), "algorithm not allowed for key"},
		{"wrong key with known kid", k.rsa2.SignWith(t, "RS256", map[string]any{"kid": "rsa-1"}, claims), "signature invalid"},
		{"unknown kid", k.rsa2.Sign(t, claims), "unknown key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), tt.token)
			wantReject(t, err, tt.reason)
		})
	}
}

// Rotation at the key server is picked up by the unknown-kid refetch,
// without waiting for the refresher or restarting the verifier.
func TestJWKSRotationOnUnknownKID(t *testing.T) {
	k := getKeys(t)
	srv := authtest.NewJWKSServer(t, k.rsa)
	v := newVerifier(t, jwksConfig(t, srv.URL))
	oldTok, newTok := userToken(t, k.rsa), userToken(t, k.rsa2)
	if _, err := v.Verify(t.Context(), oldTok); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}

	srv.SetKeys(k.rsa2) // rsa-1 removed, rsa-2 added
	if _, err := v.Verify(t.Context(), newTok); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	if got := srv.Fetches(); got != 2 {
		t.Fatalf("fetches = %d, want 2 (start + one refetch)", got)
	}
	_, err := v.Verify(t.Context(), oldTok)
	wantReject(t, err, "unknown key id")
}

// The periodic refresher alone also picks up rotation.
func TestJWKSRotationByRefresher(t *testing.T) {
	k := getKeys(t)
	srv := authtest.NewJWKSServer(t, k.rsa)
	cfg := jwksConfig(t, srv.URL)
	cfg.JWKSRefresh = 20 * time.Millisecond
	v := newVerifier(t, cfg)
	// Spend the on-demand refetch, so only the refresher can help below.
	_, err := v.Verify(t.Context(), userToken(t, k.ec))
	wantReject(t, err, "unknown key id")

	srv.SetKeys(k.rsa2)
	newTok, oldTok := userToken(t, k.rsa2), userToken(t, k.rsa)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := v.Verify(t.Context(), newTok); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("new key never picked up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err = v.Verify(t.Context(), oldTok)
	wantReject(t, err, "unknown key id")
}

func TestJWKSUnknownKIDRefetchRateLimited(t *testing.T) {
	k := getKeys(t)
	forged := func(kid string) string {
		return k.rsa2.SignWith(t, "RS256", map[string]any{"kid": kid}, authtest.Claims("bob", "acme", time.Hour))
	}

	t.Run("flood", func(t *testing.T) {
		srv := authtest.NewJWKSServer(t, k.rsa)
		v := newVerifier(t, jwksConfig(t, srv.URL)) // JWKSRefetchMin: 1h
		_, err := v.Verify(t.Context(), forged("made-up-0"))
		wantReject(t, err, "unknown key id")
		if got := srv.Fetches(); got != 2 {
			t.Fatalf("fetches = %d, want 2 (start + one refetch)", got)
		}
		// A flood of made-up kids within JWKSRefetchMin fetches nothing more.
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				_, err := v.Verify(context.Background(), forged(fmt.Sprint("made-up-", i+1)))
				if !errors.Is(err, auth.ErrUnauthenticated) {
					t.Errorf("forged token: err = %v", err)
				}
			})
		}
		wg.Wait()
		if got := srv.Fetches(); got != 2 {
			t.Fatalf("fetches after flood = %d, want 2", got)
		}
	})

	t.Run("allowed again after JWKSRefetchMin", func(t *testing.T) {
		srv := authtest.NewJWKSServer(t, k.rsa)
		cfg := jwksConfig(t, srv.URL)
		cfg.JWKSRefetchMin = 50 * time.Millisecond
		v := newVerifier(t, cfg)
		_, _ = v.Verify(t.Context(), forged("made-up-1"))
		time.Sleep(2 * cfg.JWKSRefetchMin)
		_, _ = v.Verify(t.Context(), forged("made-up-2"))
		if got := srv.Fetches(); got != 3 {
			t.Fatalf("fetches = %d, want 3", got)
		}
	})
}

func TestJWKSRefreshFailureKeepsKeys(t *testing.T) {
	k := getKeys(t)
	srv := authtest.NewJWKSServer(t, k.ec)
	cfg := jwksConfig(t, srv.URL)
	cfg.JWKSRefresh = 10 * time.Millisecond
	v := newVerifier(t, cfg)
	srv.SetBody(http.StatusInternalServerError, []byte("down"))
	for srv.Fetches() < 4 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := v.Verify(t.Context(), userToken(t, k.ec)); err != nil {
		t.Fatalf("Verify after failed refreshes: %v", err)
	}
}

func TestJWKSSkipsUnusableKeys(t *testing.T) {
	k := getKeys(t)
	srv := authtest.NewJWKSServer(t)
	rsaJWK := k.rsa.JWK()
	rsaJWK["use"] = "enc"
	mismatched := k.rsa2.JWK()
	mismatched["alg"] = "ES256"
	body := `{"keys":[
		{"kty":"RSA","kid":"bad-n","n":"!!","e":"AQAB"},
		{"kty":"RSA","kid":"bad-e","n":"AQAB","e":"AAAAAAAB"},
		{"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"},
		{"kty":"EC","kid":"bad-crv","crv":"P-999","x":"AA","y":"AA"},
		{"kty":"EC","kid":"off-curve","crv":"P-256","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("A", 43) + `"},
		{"kty":"OKP","kid":"x25519","crv":"X25519","x":"AA"},
		{"kty":"OKP","kid":"short","crv":"Ed25519","x":"AA"},
		{"kty":"XYZ","kid":"odd"},
		"not an object",
		` + mustJSON(t, rsaJWK) + `,
		` + mustJSON(t, mismatched) + `,
		` + mustJSON(t, k.ec.JWK()) + `,
		` + mustJSON(t, k.ec.JWK()) + `
	]}`
	srv.SetBody(http.StatusOK, []byte(body))
	v := newVerifier(t, jwksConfig(t, srv.URL))
	if _, err := v.Verify(t.Context(), userToken(t, k.ec)); err != nil {
		t.Fatalf("good key: %v", err)
	}
	for _, key := range []*authtest.Key{k.rsa, k.rsa2} {
		_, err := v.Verify(t.Context(), userToken(t, key))
		wantReject(t, err, "unknown key id")
	}
}

func TestJWKSStartFailures(t *testing.T) {
	k := getKeys(t)
	oct := authtest.NewHMACKey(t)
	oct.KID = "oct"
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"server error", 500, "oops", "status 500"},
		{"not JSON", 200, "<html>", "not JSON"},
		{"no keys", 200, `{"keys":[]}`, "no usable signature key"},
		{"only symmetric keys", 200, `{"keys":[` + mustJSON(t, oct.JWK()) + `]}`, "no usable signature key"},
		{"too large", 200, `{"keys":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := authtest.NewJWKSServer(t, k.rsa)
			srv.SetBody(tt.status, []byte(tt.body))
			_, err := auth.NewVerifier(t.Context(), jwksConfig(t, srv.URL))
			if err == nil || !strings.Contains(err.Error(), "initial JWKS fetch") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want initial JWKS fetch … %s", err, tt.want)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := authtest.NewJWKSServer(t, k.rsa)
		srv.Close()
		if _, err := auth.NewVerifier(t.Context(), jwksConfig(t, srv.URL)); err == nil {
			t.Fatal("NewVerifier succeeded against a closed server")
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		srv := authtest.NewJWKSServer(t, k.rsa)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := auth.NewVerifier(ctx, jwksConfig(t, srv.URL)); err == nil {
			t.Fatal("NewVerifier succeeded with a cancelled context")
		}
	})
}

func TestCloseStopsRefresher(t *testing.T) {
	k := getKeys(t)
	srv := authtest.NewJWKSServer(t, k.rsa)
	ignore := goleak.IgnoreCurrent()
	cfg := jwksConfig(t, srv.URL)
	cfg.JWKSRefresh = 5 * time.Millisecond
	v, err := auth.NewVerifier(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for srv.Fetches() < 3 { // the refresher is running
		time.Sleep(time.Millisecond)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	srv.CloseClientConnections()
	goleak.VerifyNone(t, ignore)
	// Verify still works with the keys it has.
	if _, err := v.Verify(t.Context(), userToken(t, k.rsa)); err != nil {
		t.Fatalf("Verify after Close: %v", err)
	}
}
