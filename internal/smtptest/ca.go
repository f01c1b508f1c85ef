package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throwaway certificate authority made at test time, so that tests
// verify server certificates exactly as production does (against a root
// pool) instead of turning verification off.
type CA struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

// LeafOptions shapes a server certificate issued by a CA.
type LeafOptions struct {
	// Hosts are the DNS names or IP addresses the certificate is valid
	// for. Default: 127.0.0.1, ::1 and localhost.
	Hosts []string
	// NotBefore and NotAfter bound the validity period. Defaults: an hour
	// ago and a day from now. A NotAfter in the past makes an expired
	// certificate; a NotBefore in the future one that is not valid yet.
	NotBefore, NotAfter time.Time
}

// NewCA makes a new self-signed root (ECDSA P-256), valid from a day ago
// for a year.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	key := mustKey(tb)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          mustSerial(tb),
		Subject:               pkix.Name{Organization: []string{"smtptest"}, CommonName: "smtptest CA"},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("smtptest: create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("smtptest: parse CA certificate: %v", err)
	}
	return &CA{cert: cert, der: der, key: key}
}

// Pool returns a new pool holding only this CA, for tls.Config.RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// PEM returns the CA certificate in PEM form, to be written to the file
// named by OUTBOUND_SMTP_CA_FILE.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der})
}

// Leaf issues a server certificate signed by the CA.
func (ca *CA) Leaf(tb testing.TB, opts LeafOptions) tls.Certificate {
	tb.Helper()
	hosts := opts.Hosts
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "::1", "localhost"}
	}
	now := time.Now()
	notBefore, notAfter := opts.NotBefore, opts.NotAfter
	if notBefore.IsZero() {
		notBefore = now.Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = now.Add(24 * time.Hour)
	}
	if notBefore.After(notAfter) { // only NotAfter was moved into the past
		notBefore = notAfter.Add(-24 * time.Hour)
	}

	key := mustKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber: mustSerial(tb),
		Subject:      pkix.Name{Organization: []string{"smtptest"}, CommonName: hosts[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatalf("smtptest: create leaf certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("smtptest: parse leaf certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func mustKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("smtptest: generate key: %v", err)
	}
	return key
}

func mustSerial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatalf("smtptest: serial number: %v", err)
	}
	return n
}

// WriteLeaf writes cert's chain and key as PEM files under dir, the way an
// operator hands a listener its certificate (OUTBOUND_SUBMISSION_TLS_CERT
// and _KEY). The key is written first, each file whole by a rename, so a
// server reloading them never reads half a file or the new certificate
// with the old key for long.
func WriteLeaf(tb testing.TB, dir string, cert tls.Certificate) (certFile, keyFile string) {
	tb.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		tb.Fatal(err)
	}
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path string
		data []byte
	}{{keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}, {certFile, chain}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			tb.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			tb.Fatal(err)
		}
	}
	return certFile, keyFile
}
