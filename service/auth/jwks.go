package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net/http"
	"slices"
	"sync/atomic"
	"time"
)

// maxJWKSBytes bounds a JWKS response; real sets are a few KiB.
const maxJWKSBytes = 1 << 20

// keySet is an immutable snapshot of verification keys, replaced whole.
type keySet struct {
	byKID map[string]verifyKey // keys that have a kid
	all   []verifyKey          // every key, for tokens without a kid
}

func (s *keySet) kids() []string { return slices.Sorted(maps.Keys(s.byKID)) }

// jwksSource keeps a JWKS fresh: a refresher goroutine refetches it every
// interval, and lookupKID refetches on demand, rate-limited, when a token
// names a kid it has not seen (key rotation without restart).
type jwksSource struct {
	url        string
	client     *http.Client
	log        *slog.Logger
	refetchMin time.Duration

	set atomic.Pointer[keySet]
	// sem lets one fetch run at a time; a channel rather than a mutex so a
	// waiting Verify can give up when its context ends.
	sem          chan struct{}
	lastOnDemand time.Time // guarded by sem

	runCtx context.Context // ends at close
	stop   context.CancelFunc
	done   chan struct{}
}

// startJWKS fetches the set once (failing if it cannot) and starts the
// refresher. The refresher runs until close.
func startJWKS(ctx context.Context, cfg Config, client *http.Client) (*jwksSource, error) {
	j := &jwksSource{
		url:        cfg.JWKSURL,
		client:     client,
		log:        cfg.Logger,
		refetchMin: cfg.JWKSRefetchMin,
		sem:        make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	if err := j.refresh(ctx); err != nil {
		return nil, fmt.Errorf("auth: initial JWKS fetch from %s: %w", j.url, err)
	}
	j.runCtx, j.stop = context.WithCancel(context.Background())
	go j.run(j.runCtx, cfg.JWKSRefresh)
	return j, nil
}

func (j *jwksSource) close() {
	j.stop()
	<-j.done
}

func (j *jwksSource) run(ctx context.Context, every time.Duration) {
	defer close(j.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case j.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		err := j.refresh(ctx)
		<-j.sem
		if err != nil && ctx.Err() == nil {
			j.log.Warn("auth: JWKS refresh failed; keeping the previous keys", "url", j.url, "err", err)
		}
	}
}

// lookupKID returns the key named kid, refetching the set first if kid is
// unknown and no on-demand refetch ran within refetchMin.
func (j *jwksSource) lookupKID(ctx context.Context, kid string) (verifyKey, bool) {
	if k, ok := j.set.Load().byKID[kid]; ok {
		return k, true
	}
	select {
	case j.sem <- struct{}{}:
	case <-ctx.Done():
		return verifyKey{}, false
	}
	defer func() { <-j.sem }()
	// Another caller may have fetched it while we waited.
	if k, ok := j.set.Load().byKID[kid]; ok {
		return k, true
	}
	// After close, fetch nothing more: the keys at hand are final.
	if j.runCtx.Err() != nil || (!j.lastOnDemand.IsZero() && time.Since(j.lastOnDemand) < j.refetchMin) {
		return verifyKey{}, false
	}
	j.lastOnDemand = time.Now()
	if err := j.refresh(ctx); err != nil {
		j.log.Warn("auth: JWKS refetch for unknown kid failed", "url", j.url, "kid", kid, "err", err)
	}
	k, ok := j.set.Load().byKID[kid]
	return k, ok
}

// refresh fetches the set and installs it. On error the old set stays.
func (j *jwksSource) refresh(ctx context.Context) error {
	set, err := j.fetch(ctx)
	if err != nil {
		return err
	}
	old := j.set.Swap(set)
	if old == nil || !slices.Equal(old.kids(), set.kids()) {
		j.log.Info("auth: JWKS keys loaded", "url", j.url, "kids", set.kids(), "keys", len(set.all))
	}
	return nil
}

func (j *jwksSource) fetch(ctx context.Context) (*keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS larger than %d bytes", maxJWKSBytes)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("JWKS is not JSON: %w", err)
	}
	set := &keySet{byKID: make(map[string]verifyKey)}
	for i, raw := range doc.Keys {
		k, skip, err := parseJWK(raw)
		if err != nil {
			j.log.Warn("auth: JWKS key skipped", "url", j.url, "index", i, "kid", k.kid, "err", err)
			continue
		}
		if skip {
			continue
		}
		if k.kid != "" {
			if _, dup := set.byKID[k.kid]; dup {
				j.log.Warn("auth: JWKS duplicate kid skipped", "url", j.url, "kid", k.kid)
				continue
			}
			set.byKID[k.kid] = k
		}
		set.all = append(set.all, k)
	}
	if len(set.all) == 0 {
		return nil, errors.New("JWKS has no usable signature key")
	}
	return set, nil
}

// jwk holds the members of a JSON Web Key (RFC 7517/7518/8037) we use.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWK turns one JWK into a key. skip is set, without error, for keys
// that are not for us: encryption keys and symmetric ("oct") keys, which
// must never verify anything fetched from a public URL.
func parseJWK(raw json.RawMessage) (k verifyKey, skip bool, err error) {
	var j jwk
	if err := json.Unmarshal(raw, &j); err != nil {
		return verifyKey{}, false, err
	}
	k.kid = j.Kid
	if (j.Use != "" && j.Use != "sig") || j.Kty == "oct" {
		return k, true, nil
	}
	var pub any
	switch j.Kty {
	case "RSA":
		pub, err = j.rsa()
	case "EC":
		pub, err = j.ecdsa()
	case "OKP":
		pub, err = j.ed25519()
	default:
		err = fmt.Errorf("unsupported kty %q", j.Kty)
	}
	if err != nil {
		return k, false, err
	}
	k, err = newVerifyKey(j.Kid, pub, j.Alg)
	if err != nil {
		return verifyKey{kid: j.Kid}, false, err
	}
	return k, false, nil
}

func b64(field, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("member %q is not base64url", field)
	}
	return b, nil
}

func (j jwk) rsa() (*rsa.PublicKey, error) {
	n, err := b64("n", j.N)
	if err != nil {
		return nil, err
	}
	e, err := b64("e", j.E)
	if err != nil {
		return nil, err
	}
	if len(e) > 4 {
		return nil, errors.New("RSA exponent too large")
	}
	exp := int(new(big.Int).SetBytes(e).Int64())
	if exp < 3 || exp%2 == 0 {
		return nil, errors.New("RSA exponent invalid")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}, nil
}

func (j jwk) ecdsa() (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	switch j.Crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return nil, fmt.Errorf("unsupported EC curve %q", j.Crv)
	}
	size := (curve.Params().BitSize + 7) / 8
	x, err := b64("x", j.X)
	if err != nil {
		return nil, err
	}
	y, err := b64("y", j.Y)
	if err != nil {
		return nil, err
	}
	if len(x) != size || len(y) != size {
		return nil, errors.New("EC coordinates of the wrong size")
	}
	// ParseUncompressedPublicKey also checks the point is on the curve.
	return ecdsa.ParseUncompressedPublicKey(curve, slices.Concat([]byte{4}, x, y))
}

func (j jwk) ed25519() (ed25519.PublicKey, error) {
	if j.Crv != "Ed25519" {
		return nil, fmt.Errorf("unsupported OKP curve %q", j.Crv)
	}
	x, err := b64("x", j.X)
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, errors.New("Ed25519 key of the wrong size")
	}
	return ed25519.PublicKey(x), nil
}
