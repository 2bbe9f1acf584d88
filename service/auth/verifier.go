package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"

	"github.com/golang-jwt/jwt/v5"
)

// Verifier checks tokens against one configured key source. It is safe for
// concurrent use. Close it to stop the JWKS refresher.
type Verifier struct {
	cfg     Config
	parser  *jwt.Parser
	methods []string     // the algs the parser accepts
	static  *keySet      // HMAC secret or PEM key; nil with a JWKS
	jwks    *jwksSource  // nil without a JWKS
	client  *http.Client // the JWKS client, closed by Close if we made it
	owned   bool
	once    sync.Once
}

// NewVerifier checks cfg, fills its defaults and, for a JWKS, fetches the key
// set once — ctx bounds that first fetch only — failing if it cannot. The
// JWKS refresher then runs until Close.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg}
	var methods []string
	// if/else, not tagless switches, in this package: gremlins v0.6.0
	// cannot see a switch's case conditions as covered
	// (go-gremlins/gremlins#298), and auth is mutation tested.
	if len(cfg.HMACSecret) > 0 {
		if len(cfg.HMACSecret) < 32 {
			cfg.Logger.Warn("auth: HMAC secret is shorter than 32 bytes; fine for a local try, not for production")
		}
		k := verifyKey{key: slices.Clone(cfg.HMACSecret), algs: hmacAlgs}
		v.static = &keySet{all: []verifyKey{k}}
		methods = k.algs
	} else if len(cfg.PublicKeyPEM) > 0 {
		k, err := parsePublicKeyPEM(cfg.PublicKeyPEM)
		if err != nil {
			return nil, err
		}
		v.static = &keySet{all: []verifyKey{k}}
		methods = k.algs
	} else {
		v.client = cfg.HTTPClient
		if v.client == nil {
			// A transport of our own, so Close can shut its idle
			// connections without touching anyone else's.
			tr := http.DefaultTransport.(*http.Transport).Clone()
			v.client = &http.Client{Transport: tr, Timeout: defaultHTTPTimeout}
			v.owned = true
		}
		if v.jwks, err = startJWKS(ctx, cfg, v.client); err != nil {
			v.closeIdle()
			return nil, err
		}
		methods = asymmetricAlgs
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithIssuedAt(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	v.methods = methods
	return v, nil
}

// Close stops the JWKS refresher and waits for it. It is safe to call more
// than once; Verify keeps working with the last keys fetched.
func (v *Verifier) Close() error {
	v.once.Do(func() {
		if v.jwks != nil {
			v.jwks.close()
		}
		v.closeIdle()
	})
	return nil
}

func (v *Verifier) closeIdle() {
	if v.owned {
		v.client.CloseIdleConnections()
	}
}

// Errors a key lookup returns; Verify turns them into reasons.
var (
	errUnknownKID = errors.New("unknown kid")
	errBadKID     = errors.New("kid is not a string")
	errKeyAlg     = errors.New("key does not allow the token's alg")
	errCrit       = errors.New("crit header not supported")
)

// Verify checks raw (a compact JWS, without any "Bearer " prefix) and returns
// the identity it carries. ctx bounds a JWKS refetch for an unknown kid.
// Every error wraps ErrUnauthenticated.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	if raw == "" {
		return Identity{}, reject("token missing", nil)
	}
	if len(raw) > MaxTokenBytes {
		return Identity{}, reject("token too large", nil)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	})
	if err != nil {
		return Identity{}, v.reason(tok, claims, err)
	}
	return v.identity(claims)
}

// keyFor picks the key for t. Static keys ignore kid; a JWKS key is looked
// up by kid, or, for a token without one, every key that allows its alg is
// tried. A key never verifies an alg outside its own type.
func (v *Verifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	alg := t.Method.Alg()
	kidv, hasKID := t.Header["kid"]
	kid, ok := kidv.(string)
	if hasKID && !ok {
		return nil, errBadKID
	}
	if v.jwks != nil && kid != "" {
		k, ok := v.jwks.lookupKID(ctx, kid)
		if !ok {
			return nil, errUnknownKID
		}
		if !k.allows(alg) {
			return nil, errKeyAlg
		}
		return k.key, nil
	}
	set := v.static
	if set == nil {
		set = v.jwks.set.Load()
	}
	var keys []jwt.VerificationKey
	for _, k := range set.all {
		if k.allows(alg) {
			keys = append(keys, k.key)
		}
	}
	switch len(keys) {
	case 0:
		return nil, errKeyAlg
	case 1:
		return keys[0], nil
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}

// reason turns a parse error into a short rejection. The order matters when
// jwt reports several claim errors at once: the first match wins. (An if
// chain, not a tagless switch, so that gremlins can mutate its conditions;
// see NewVerifier.)
func (v *Verifier) reason(tok *jwt.Token, claims jwt.MapClaims, err error) error {
	missing := func(name string) bool { _, ok := claims[name]; return !ok }
	r := "token invalid"
	if errors.Is(err, errUnknownKID) {
		r = "unknown key id"
	} else if errors.Is(err, errBadKID) {
		r = "token malformed"
	} else if errors.Is(err, errKeyAlg) {
		r = "algorithm not allowed for key"
	} else if errors.Is(err, errCrit) {
		r = "crit header not supported"
	} else if errors.Is(err, jwt.ErrTokenMalformed) {
		r = "token malformed"
	} else if tok != nil && (tok.Method == nil || !slices.Contains(v.methods, tok.Method.Alg())) {
		r = "algorithm not allowed"
	} else if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		r = "signature invalid"
	} else if errors.Is(err, jwt.ErrTokenExpired) {
		r = "token expired"
	} else if errors.Is(err, jwt.ErrTokenNotValidYet) {
		r = "token not valid yet"
	} else if errors.Is(err, jwt.ErrTokenUsedBeforeIssued) {
		r = "token issued in the future"
	} else if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && missing("exp") {
		r = "exp claim missing"
	} else if errors.Is(err, jwt.ErrTokenInvalidIssuer) || v.cfg.Issuer != "" && missing("iss") {
		r = "issuer invalid"
	} else if errors.Is(err, jwt.ErrTokenInvalidAudience) || v.cfg.Audience != "" && missing("aud") {
		r = "audience invalid"
	} else if errors.Is(err, jwt.ErrInvalidType) {
		r = "claims invalid"
	}
	return reject(r, err)
}
