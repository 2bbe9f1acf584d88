package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/auth/authtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testKeys are made once: RSA generation is slow under -race.
type testKeys struct{ hmac, rsa, rsa2, ec, ed *authtest.Key }

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		keys = testKeys{
			hmac: authtest.NewHMACKey(t),
			rsa:  authtest.NewRSAKey(t, "rsa-1"),
			rsa2: authtest.NewRSAKey(t, "rsa-2"),
			ec:   authtest.NewECKey(t, "ec-1"),
			ed:   authtest.NewEd25519Key(t, "ed-1"),
		}
	})
	return keys
}

func newVerifier(t *testing.T, cfg auth.Config) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// wantReject checks err is an ErrUnauthenticated whose text is "auth: "+reason.
func wantReject(t *testing.T, err error, reason string) {
	t.Helper()
	if !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("err = %v, want ErrUnauthenticated", err)
	}
	if got := err.Error(); got != "auth: "+reason {
		t.Fatalf("err = %q, want %q", got, "auth: "+reason)
	}
}

func user(claims map[string]any, edits ...func(map[string]any)) map[string]any {
	for _, e := range edits {
		e(claims)
	}
	return claims
}

func set(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
func del(k string) func(map[string]any)        { return func(m map[string]any) { delete(m, k) } }

func TestVerifyKeyTypes(t *testing.T) {
	k := getKeys(t)
	tests := []struct {
		name string
		cfg  auth.Config
		key  *authtest.Key
	}{
		{"HS256", auth.Config{HMACSecret: k.hmac.Public.([]byte)}, k.hmac},
		{"RS256", auth.Config{PublicKeyPEM: k.rsa.PublicPEM(t)}, k.rsa},
		{"ES256", auth.Config{PublicKeyPEM: k.ec.PublicPEM(t)}, k.ec},
		{"EdDSA", auth.Config{PublicKeyPEM: k.ed.PublicPEM(t)}, k.ed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, tt.cfg)
			claims := user(authtest.Claims("bob", "acme", time.Hour), set("store", "s1"))
			id, err := v.Verify(t.Context(), tt.key.Sign(t, claims))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.User != "bob" || id.Tenant != "acme" || id.Store != "s1" || id.Publisher || id.Platform {
				t.Fatalf("identity = %+v", id)
			}
			// exp plus the default 30s leeway: when Verify starts refusing it.
			if exp := time.Unix(claims["exp"].(int64), 0).Add(auth.DefaultLeeway); !id.ExpiresAt.Equal(exp) {
				t.Fatalf("ExpiresAt = %v, want exp + leeway %v", id.ExpiresAt, exp)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	k := getKeys(t)
	hsCfg := auth.Config{HMACSecret: k.hmac.Public.([]byte)}
	rsaPEM := k.rsa.PublicPEM(t)
	rsCfg := auth.Config{PublicKeyPEM: rsaPEM}
	ok := func() map[string]any { return authtest.Claims("bob", "acme", time.Hour) }
	// The RSA public key bytes used as an HMAC secret: algorithm confusion.
	confused := &authtest.Key{Alg: "HS256", KID: "rsa-1", Signer: rsaPEM}
	other := authtest.NewHMACKey(t)
	hour := time.Hour

	tests := []struct {
		name   string
		cfg    auth.Config
		token  string
		reason string
	}{
		{"alg none", hsCfg, k.hmac.SignWith(t, "none", nil, ok()), "algorithm not allowed"},
		{"alg none vs RSA", rsCfg, k.rsa.SignWith(t, "none", nil, ok()), "algorithm not allowed"},
		{"wrong HMAC key", hsCfg, other.Sign(t, ok()), "signature invalid"},
		{"wrong RSA key", rsCfg, k.rsa2.Sign(t, ok()), "signature invalid"},
		{"HS256 signed with RSA public key", rsCfg, confused.Sign(t, ok()), "algorithm not allowed"},
		{"RS256 against HMAC config", hsCfg, k.rsa.Sign(t, ok()), "algorithm not allowed"},
		{"ES256 against RSA config", rsCfg, k.ec.Sign(t, ok()), "algorithm not allowed"},
		{"unknown alg", hsCfg, b64(`{"alg":"XX999"}`) + ".e30.c2ln", "algorithm not allowed"},
		{"expired", hsCfg, k.hmac.Sign(t, user(ok(), set("exp", time.Now().Add(-time.Minute).Unix()))), "token expired"},
		{"expired beyond custom leeway", auth.Config{HMACSecret: k.hmac.Public.([]byte), Leeway: time.Second},
			k.hmac.Sign(t, user(ok(), set("exp", time.Now().Add(-10*time.Second).Unix()))), "token expired"},
		{"expired, no leeway", auth.Config{HMACSecret: k.hmac.Public.([]byte), Leeway: auth.NoLeeway},
			k.hmac.Sign(t, user(ok(), set("exp", time.Now().Add(-2*time.Second).Unix()))), "token expired"},
		{"not yet valid, no leeway", auth.Config{HMACSecret: k.hmac.Public.([]byte), Leeway: auth.NoLeeway},
			k.hmac.Sign(t, user(ok(), set("nbf", time.Now().Add(2*time.Second).Unix()))), "token not valid yet"},
		{"not yet valid", hsCfg, k.hmac.Sign(t, user(ok(), set("nbf", time.Now().Add(hour).Unix()))), "token not valid yet"},
		{"issued in the future", hsCfg, k.hmac.Sign(t, user(ok(), set("iat", time.Now().Add(hour).Unix()))), "token issued in the future"},
		{"missing exp", hsCfg, k.hmac.Sign(t, user(ok(), del("exp"))), "exp claim missing"},
		{"exp not a number", hsCfg, k.hmac.Sign(t, user(ok(), set("exp", "tomorrow"))), "claims invalid"},
		{"wrong issuer", auth.Config{HMACSecret: k.hmac.Public.([]byte), Issuer: "https://idp"},
			k.hmac.Sign(t, user(ok(), set("iss", "https://evil"))), "issuer invalid"},
		{"missing issuer", auth.Config{HMACSecret: k.hmac.Public.([]byte), Issuer: "https://idp"},
			k.hmac.Sign(t, ok()), "issuer invalid"},
		{"wrong audience", auth.Config{HMACSecret: k.hmac.Public.([]byte), Audience: "oshirase"},
			k.hmac.Sign(t, user(ok(), set("aud", []string{"billing"}))), "audience invalid"},
		{"missing audience", auth.Config{HMACSecret: k.hmac.Public.([]byte), Audience: "oshirase"},
			k.hmac.Sign(t, ok()), "audience invalid"},
		{"crit header", hsCfg, k.hmac.SignWith(t, "HS256", map[string]any{"crit": []string{"exp"}}, ok()), "crit header not supported"},
		{"kid not a string", hsCfg, k.hmac.SignWith(t, "HS256", map[string]any{"kid": 7}, ok()), "token malformed"},
		{"empty", hsCfg, "", "token missing"},
		{"garbage", hsCfg, "not a token", "token malformed"},
		{"three dots", hsCfg, "...", "token malformed"},
		{"two dots only", hsCfg, "..", "token malformed"},
		{"four segments", hsCfg, k.hmac.Sign(t, ok()) + ".x", "token malformed"},
		{"bad base64", hsCfg, b64(`{"alg":"HS256"}`) + ".e30.!!!", "token malformed"},
		{"no alg", hsCfg, "e30.e30.c2ln", "algorithm not allowed"},
		{"header not an object", hsCfg, b64("[]") + "." + b64("{}") + ".c2ln", "token malformed"},
		{"claims not JSON", hsCfg, b64(`{"alg":"HS256"}`) + "." + b64("{") + ".c2ln", "token malformed"},
		{"binary junk", hsCfg, "\x00\xff.\x01.\x02", "token malformed"},
		{"huge", hsCfg, strings.Repeat("A", auth.MaxTokenBytes+1), "token too large"},
		{"huge but well-formed", hsCfg, k.hmac.Sign(t, user(ok(), set("pad", strings.Repeat("x", auth.MaxTokenBytes)))), "token too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, tt.cfg)
			id, err := v.Verify(t.Context(), tt.token)
			wantReject(t, err, tt.reason)
			if id != (auth.Identity{}) {
				t.Fatalf("identity %+v returned with an error", id)
			}
		})
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerifyLeewayAccepts(t *testing.T) {
	k := getKeys(t)
	v := newVerifier(t, auth.Config{HMACSecret: k.hmac.Public.([]byte)})
	// Within the default 30s leeway on both sides.
	exp := time.Now().Add(-10 * time.Second).Unix()
	claims := user(authtest.Claims("bob", "acme", time.Hour),
		set("exp", exp),
		set("nbf", time.Now().Add(10*time.Second).Unix()))
	id, err := v.Verify(t.Context(), k.hmac.Sign(t, claims))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// An accepted token is not yet expired: it expires with its leeway.
	if want := time.Unix(exp, 0).Add(30 * time.Second); !id.ExpiresAt.Equal(want) || time.Until(id.ExpiresAt) <= 0 {
		t.Fatalf("ExpiresAt = %v, want %v (exp + leeway, in the future)", id.ExpiresAt, want)
	}
}

func TestVerifyIssuerAudience(t *testing.T) {
	k := getKeys(t)
	v := newVerifier(t, auth.Config{HMACSecret: k.hmac.Public.([]byte), Issuer: "https://idp", Audience: "oshirase"})
	for _, aud := range []any{"oshirase", []string{"billing", "oshirase"}} {
		claims := user(authtest.Claims("bob", "acme", time.Hour), set("iss", "https://idp"), set("aud", aud))
		if _, err := v.Verify(t.Context(), k.hmac.Sign(t, claims)); err != nil {
			t.Fatalf("aud %v: %v", aud, err)
		}
	}
}

func TestVerifyClaims(t *testing.T) {
	k := getKeys(t)
	base := func() map[string]any { return authtest.Claims("bob", "acme", time.Hour) }
	tests := []struct {
		name   string
		cfg    auth.Config
		claims map[string]any
		want   auth.Identity
		reason string
	}{
		{name: "user", claims: base(), want: auth.Identity{User: "bob", Tenant: "acme"}},
		{name: "role string", claims: user(base(), set("roles", "publisher")),
			want: auth.Identity{User: "bob", Tenant: "acme", Publisher: true}},
		{name: "role array", claims: user(base(), set("roles", []string{"reader", "publisher"})),
			want: auth.Identity{User: "bob", Tenant: "acme", Publisher: true}},
		{name: "platform without tenant", claims: user(base(), del("tenant"), del("sub"), set("roles", []string{"platform"})),
			want: auth.Identity{Publisher: true, Platform: true}},
		{name: "publisher without user", claims: user(base(), del("sub"), set("roles", "publisher")),
			want: auth.Identity{Tenant: "acme", Publisher: true}},
		{name: "unknown roles ignored", claims: user(base(), set("roles", []string{"admin"})),
			want: auth.Identity{User: "bob", Tenant: "acme"}},
		{name: "null roles", claims: user(base(), set("roles", nil)), want: auth.Identity{User: "bob", Tenant: "acme"}},
		{name: "custom claim and role names",
			cfg: auth.Config{UserClaim: "uid", TenantClaim: "https://x/org", StoreClaim: "shop",
				RolesClaim: "grp", PublisherRole: "svc", PlatformRole: "root"},
			claims: map[string]any{"uid": "u1", "https://x/org": "o1", "shop": "s9", "grp": []any{"svc"},
				"exp": time.Now().Add(time.Hour).Unix()},
			want: auth.Identity{User: "u1", Tenant: "o1", Store: "s9", Publisher: true}},
		{name: "custom names ignore defaults",
			cfg:    auth.Config{TenantClaim: "org", RolesClaim: "grp"},
			claims: user(base(), set("roles", "platform")), reason: `claim "org" missing`},

		{name: "user missing", claims: user(base(), del("sub")), reason: `claim "sub" missing`},
		{name: "tenant missing", claims: user(base(), del("tenant")), reason: `claim "tenant" missing`},
		{name: "publisher needs tenant", claims: user(base(), del("tenant"), set("roles", "publisher")),
			reason: `claim "tenant" missing`},
		{name: "empty tenant", claims: user(base(), set("tenant", "")), reason: `claim "tenant" empty`},
		{name: "empty store", claims: user(base(), set("store", "")), reason: `claim "store" empty`},
		{name: "tenant not a string", claims: user(base(), set("tenant", 42)), reason: `claim "tenant" is not a string`},
		{name: "sub not a string", claims: user(base(), set("sub", []string{"a"})), reason: `claim "sub" is not a string`},
		{name: "too long", claims: user(base(), set("tenant", strings.Repeat("a", auth.MaxClaimBytes+1))),
			reason: `claim "tenant" too long`},
		{name: "longest allowed", claims: user(base(), set("tenant", strings.Repeat("a", auth.MaxClaimBytes))),
			want: auth.Identity{User: "bob", Tenant: strings.Repeat("a", auth.MaxClaimBytes)}},
		{name: "control character", claims: user(base(), set("sub", "bob\nadmin")), reason: `claim "sub" has control characters`},
		{name: "C1 control", claims: user(base(), set("store", "a\u0085b")), reason: `claim "store" has control characters`},
		{name: "unicode fine", claims: user(base(), set("tenant", "株式会社")), want: auth.Identity{User: "bob", Tenant: "株式会社"}},
		{name: "roles wrong type", claims: user(base(), set("roles", 1)), reason: `claim "roles" is neither a string nor an array`},
		{name: "roles non-string element", claims: user(base(), set("roles", []any{"publisher", 3})),
			reason: `claim "roles" holds a non-string`},
		{name: "empty role", claims: user(base(), set("roles", []string{""})), reason: `claim "roles": a role empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.HMACSecret = k.hmac.Public.([]byte)
			v := newVerifier(t, cfg)
			id, err := v.Verify(t.Context(), k.hmac.Sign(t, tt.claims))
			if tt.reason != "" {
				wantReject(t, err, tt.reason)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			id.ExpiresAt = time.Time{}
			if id != tt.want {
				t.Fatalf("identity = %+v, want %+v", id, tt.want)
			}
		})
	}
}

func TestNewVerifierConfigErrors(t *testing.T) {
	k := getKeys(t)
	rsaBlock, _ := pem.Decode(k.rsa.PublicPEM(t))
	tests := []struct {
		name string
		cfg  auth.Config
		want string
	}{
		{"no key source", auth.Config{}, "exactly one of"},
		{"two key sources", auth.Config{HMACSecret: []byte("x"), JWKSURL: "https://idp/jwks"}, "exactly one of"},
		{"not PEM", auth.Config{PublicKeyPEM: []byte("hello")}, "no PEM block"},
		{"private key PEM", auth.Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})}, "only the public key"},
		{"bad DER", auth.Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}})}, "public key"},
		{"unknown block", auth.Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "DH PARAMETERS", Bytes: rsaBlock.Bytes})}, "unsupported PEM block"},
		{"JWKS URL not http", auth.Config{JWKSURL: "file:///etc/passwd"}, "not an http(s) URL"},
		{"negative leeway", auth.Config{HMACSecret: []byte("x"), Leeway: -time.Second}, "must not be negative"},
		{"negative leeway other than NoLeeway", auth.Config{HMACSecret: []byte("x"), Leeway: auth.NoLeeway - 1}, "must not be negative"},
		{"same roles", auth.Config{HMACSecret: []byte("x"), PublisherRole: "svc", PlatformRole: "svc"}, "both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := auth.NewVerifier(t.Context(), tt.cfg)
			if err == nil {
				_ = v.Close()
				t.Fatal("NewVerifier succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "auth: ") {
				t.Fatalf("err = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestVerifyConcurrent(t *testing.T) {
	k := getKeys(t)
	v := newVerifier(t, auth.Config{PublicKeyPEM: k.ec.PublicPEM(t)})
	tok := k.ec.Sign(t, authtest.Claims("bob", "acme", time.Hour))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
