package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/oshirase/oshirase/pub/internal/access"
	"github.com/oshirase/oshirase/pub/internal/config"
	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/envconf"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/httpserve"
	"github.com/oshirase/oshirase/wire"
)

// demoCaller is every caller in AUTH_MODE=none: it may publish anything to
// the demo tenant, as the original design allowed.
var demoCaller = auth.Identity{Tenant: wire.DemoTenant, Publisher: true, Platform: true}

// newAuthenticator returns how pub learns who is calling: in jwt mode, an
// API key or a publisher token in "Authorization: Bearer …".
func newAuthenticator(ctx context.Context, cfg config.Config, log *slog.Logger) (httpserve.Authenticator, func(), error) {
	if cfg.AuthMode != envconf.AuthJWT {
		log.Warn("AUTH_MODE=none: anyone who can reach pub may publish to anyone; use AUTH_MODE=jwt in production")
		return func(r *http.Request) (context.Context, error) {
			return access.WithCredential(auth.WithIdentity(r.Context(), demoCaller), "none"), nil
		}, func() {}, nil
	}
	var v *auth.Verifier
	if cfg.HasJWT {
		var err error
		if v, err = auth.NewVerifier(ctx, cfg.JWT); err != nil {
			return nil, nil, fmt.Errorf("AUTH_MODE=jwt: %w", err)
		}
	}
	log.Info("AUTH_MODE=jwt: publishers need an API key or a publisher token", "api_keys", cfg.APIKeys.Len(), "jwt", cfg.HasJWT)
	keys := cfg.APIKeys
	authenticate := func(r *http.Request) (context.Context, error) {
		tok := auth.TokenFromRequest(r, "")
		if id, ok := keys.Lookup(tok); ok {
			return access.WithCredential(auth.WithIdentity(r.Context(), id), "key\x00"+tok), nil
		}
		if v == nil {
			return nil, fmt.Errorf("%w: missing or unknown API key", auth.ErrUnauthenticated)
		}
		id, err := v.Verify(r.Context(), tok)
		if err != nil {
			return nil, err
		}
		if !id.Publisher && !id.Platform {
			return nil, fmt.Errorf("%w: this token may not publish (it needs the publisher role)", errkind.ErrForbidden)
		}
		return access.WithCredential(auth.WithIdentity(r.Context(), id), "jwt\x00"+id.Tenant+"\x00"+id.User), nil
	}
	return authenticate, func() {
		if v != nil {
			_ = v.Close()
		}
	}, nil
}
