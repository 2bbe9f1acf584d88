package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/auth/authtest"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Public keys come in several PEM shapes; each must work.
func TestPublicKeyPEMForms(t *testing.T) {
	k := getKeys(t)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(k.rsa.Public.(*rsa.PublicKey))})
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.ed.Public, k.ed.Signer)
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, tc := range map[string]struct {
		pem []byte
		key *authtest.Key
	}{
		"PKCS1":       {pkcs1, k.rsa},
		"certificate": {cert, k.ed},
	} {
		v := newVerifier(t, auth.Config{PublicKeyPEM: tc.pem})
		if _, err := v.Verify(t.Context(), userToken(t, tc.key)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPublicKeyPEMWeakRSA(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weak := &authtest.Key{Public: &small.PublicKey}
	_, err = auth.NewVerifier(t.Context(), auth.Config{PublicKeyPEM: weak.PublicPEM(t)})
	if err == nil || !strings.Contains(err.Error(), "shorter than 2048") {
		t.Fatalf("err = %v", err)
	}
}
