package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
)

// minRSABits is the smallest RSA modulus accepted, from PEM or JWKS.
const minRSABits = 2048

// Algorithms per key type. A key only ever verifies the algorithms of its
// own type: this is what defeats algorithm confusion (an HS256 token whose
// "secret" is an RSA public key) and alg "none".
var (
	hmacAlgs    = []string{"HS256", "HS384", "HS512"}
	rsaAlgs     = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ed25519Algs = []string{"EdDSA"}
	// asymmetricAlgs is every algorithm a JWKS key may allow; never HMAC,
	// since a JWKS is public.
	asymmetricAlgs = slices.Concat(rsaAlgs, []string{"ES256", "ES384", "ES512"}, ed25519Algs)
)

// verifyKey is one key and the algorithms it may verify.
type verifyKey struct {
	kid  string
	key  any // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	algs []string
}

func (k verifyKey) allows(alg string) bool { return slices.Contains(k.algs, alg) }

// newVerifyKey checks pub and pairs it with the algorithms of its type. A
// non-empty alg (a JWK's "alg") narrows them to that one, and must belong.
func newVerifyKey(kid string, pub any, alg string) (verifyKey, error) {
	var algs []string
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < minRSABits {
			return verifyKey{}, fmt.Errorf("RSA key shorter than %d bits", minRSABits)
		}
		algs = rsaAlgs
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			algs = []string{"ES256"}
		case elliptic.P384():
			algs = []string{"ES384"}
		case elliptic.P521():
			algs = []string{"ES512"}
		default:
			return verifyKey{}, errors.New("unsupported ECDSA curve")
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return verifyKey{}, errors.New("bad Ed25519 key size")
		}
		algs = ed25519Algs
	default:
		return verifyKey{}, fmt.Errorf("unsupported key type %T", pub)
	}
	if alg != "" {
		if !slices.Contains(algs, alg) {
			return verifyKey{}, fmt.Errorf("alg %q does not fit the key type", alg)
		}
		algs = []string{alg}
	}
	return verifyKey{kid: kid, key: pub, algs: algs}, nil
}

// parsePublicKeyPEM reads the first PEM block of data as a public key.
func parsePublicKeyPEM(data []byte) (verifyKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return verifyKey{}, errors.New("auth: public key: no PEM block found")
	}
	var (
		pub any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return verifyKey{}, fmt.Errorf("auth: public key: PEM holds a %s; give the services only the public key", block.Type)
	default:
		return verifyKey{}, fmt.Errorf("auth: public key: unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return verifyKey{}, fmt.Errorf("auth: public key: %w", err)
	}
	k, err := newVerifyKey("", pub, "")
	if err != nil {
		return verifyKey{}, fmt.Errorf("auth: public key: %w", err)
	}
	return k, nil
}
