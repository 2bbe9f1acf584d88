package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLS is where a TLS redis-server (StartTLS) listens and what its clients
// need to trust it.
type TLS struct {
	// Addr is localhost:port of the TLS listener; the server's certificate
	// is valid for localhost and 127.0.0.1.
	Addr string
	// CAFile is the PEM file of the certificate authority that signed it
	// (a process trusts it with SSL_CERT_FILE).
	CAFile string
}

// StartTLS starts redis-server like Start and also on a TLS port, with a
// certificate from a certificate authority made for the test (clients
// are not asked for certificates). The plain port stays for the test's
// own inspection (Client, waitUp).
func StartTLS(tb testing.TB) (*Server, TLS) {
	tb.Helper()
	dir := tb.TempDir()
	ca, caKey := writeCert(tb, dir, "ca", nil, nil)
	writeCert(tb, dir, "server", ca, caKey)
	port := FreePort(tb)
	r := &Server{Port: FreePort(tb), tb: tb, extra: []string{
		"--tls-port", fmt.Sprint(port),
		"--tls-cert-file", filepath.Join(dir, "server.pem"),
		"--tls-key-file", filepath.Join(dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(dir, "ca.pem"),
		"--tls-auth-clients", "no",
	}}
	r.Addr = fmt.Sprintf("127.0.0.1:%d", r.Port)
	r.Start()
	tb.Cleanup(r.Stop)
	return r, TLS{Addr: fmt.Sprintf("localhost:%d", port), CAFile: filepath.Join(dir, "ca.pem")}
}

// writeCert writes name.pem and name.key into dir: a certificate
// authority when parent is nil, else a server certificate for localhost
// signed by it.
func writeCert(tb testing.TB, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "oshirase test " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		parent, parentKey = tmpl, key
	} else {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", keyDER)
	return cert, key
}
