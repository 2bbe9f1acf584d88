package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oshirase/oshirase/pub/internal/config"
	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/auth/authtest"
	"github.com/oshirase/oshirase/service/envconf"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/httpserve"
	"github.com/oshirase/oshirase/wire"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// call runs authenticate on a request carrying token (none when empty).
func call(t *testing.T, authenticate httpserve.Authenticator, token string) (auth.Identity, error) {
	t.Helper()
	r := httptest.NewRequest("POST", "/query", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	ctx, err := authenticate(r)
	if err != nil {
		return auth.Identity{}, err
	}
	id, ok := auth.FromContext(ctx)
	if !ok {
		t.Fatal("authenticated context carries no identity")
	}
	return id, nil
}

func TestNoneModeTrustsEveryCallerWithTheDemoTenant(t *testing.T) {
	authenticate, done, err := newAuthenticator(context.Background(), config.Config{Common: envconf.Common{AuthMode: envconf.AuthNone}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	id, err := call(t, authenticate, "")
	if err != nil {
		t.Fatal(err)
	}
	if id.Tenant != wire.DemoTenant || !id.Publisher || !id.Platform {
		t.Fatalf("none mode caller = %+v, want a platform publisher of %q", id, wire.DemoTenant)
	}
}

func TestJWTModeCallers(t *testing.T) {
	key := authtest.NewHMACKey(t)
	other := authtest.NewHMACKey(t)
	keys, err := auth.ParseAPIKeys("acme-key-0123456789abcdef:acme,platform-key-0123456789abcdef:*")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{
		Common:  envconf.Common{AuthMode: envconf.AuthJWT, HasJWT: true, JWT: auth.Config{HMACSecret: key.Signer.([]byte), Leeway: time.Second}},
		APIKeys: keys,
	}
	authenticate, done, err := newAuthenticator(context.Background(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer done()

	publisher := authtest.Claims("billing", "acme", time.Hour)
	publisher["roles"] = []string{"publisher"}
	platform := authtest.Claims("ops", "", time.Hour)
	delete(platform, "tenant")
	platform["roles"] = "platform"
	expired := authtest.Claims("billing", "acme", -time.Hour)
	expired["roles"] = []string{"publisher"}

	for _, tc := range []struct {
		name, token string
		want        auth.Identity
		err         error
	}{
		{name: "tenant API key", token: "acme-key-0123456789abcdef", want: auth.Identity{Tenant: "acme", Publisher: true}},
		{name: "platform API key", token: "platform-key-0123456789abcdef", want: auth.Identity{Publisher: true, Platform: true}},
		{name: "publisher token", token: key.Sign(t, publisher), want: auth.Identity{Tenant: "acme", User: "billing", Publisher: true}},
		{name: "platform token", token: key.Sign(t, platform), want: auth.Identity{User: "ops", Publisher: true, Platform: true}},
		{name: "user token may not publish", token: key.Sign(t, authtest.Claims("bob", "acme", time.Hour)), err: errkind.ErrForbidden},
		{name: "no credential", token: "", err: auth.ErrUnauthenticated},
		{name: "unknown key", token: "not-a-key-0123456789abcdef", err: auth.ErrUnauthenticated},
		{name: "expired token", token: key.Sign(t, expired), err: auth.ErrUnauthenticated},
		{name: "token signed by another key", token: other.Sign(t, publisher), err: auth.ErrUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := call(t, authenticate, tc.token)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			id.ExpiresAt = time.Time{}
			if id != tc.want {
				t.Fatalf("identity = %+v, want %+v", id, tc.want)
			}
		})
	}
}

// With API keys alone (no JWT key source), a token is not even decoded.
func TestJWTModeWithAPIKeysAlone(t *testing.T) {
	keys, _ := auth.ParseAPIKeys("acme-key-0123456789abcdef:acme")
	authenticate, done, err := newAuthenticator(context.Background(), config.Config{
		Common: envconf.Common{AuthMode: envconf.AuthJWT}, APIKeys: keys,
	}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if _, err := call(t, authenticate, "acme-key-0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	key := authtest.NewHMACKey(t)
	claims := authtest.Claims("billing", "acme", time.Hour)
	claims["roles"] = "publisher"
	if _, err := call(t, authenticate, key.Sign(t, claims)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("token without a JWT key source: %v", err)
	}
}
