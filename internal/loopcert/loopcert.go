// Package loopcert makes a certificate for the loopback names (127.0.0.1,
// ::1, localhost) that is its own root, so a client can trust exactly it:
// `outbound dev`'s submission listener and mail catcher, and the
// benchmark's, serve one.
package loopcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Cert is one such certificate with its key, parsed and in PEM.
type Cert struct {
	TLS     tls.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// New makes a certificate named name (its subject's common name), valid
// from an hour ago for 30 days.
func New(name string) (Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Cert{}, fmt.Errorf("loopcert: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Cert{}, fmt.Errorf("loopcert: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // its own root
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Cert{}, fmt.Errorf("loopcert: certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Cert{}, fmt.Errorf("loopcert: key: %w", err)
	}
	return Cert{TLS: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}, nil
}

// Pool is a pool that trusts the certificate alone.
func (c Cert) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(c.CertPEM)
	return p
}

// WriteFiles writes the certificate and its key as PEM files in dir (the
// system's temporary directory when ""), named after pattern as
// os.CreateTemp names files, readable by their owner only.
func (c Cert) WriteFiles(dir, pattern string) (certFile, keyFile string, err error) {
	write := func(pattern string, b []byte) (string, error) {
		f, err := os.CreateTemp(dir, pattern)
		if err != nil {
			return "", fmt.Errorf("loopcert: %w", err)
		}
		defer f.Close()
		if _, err := f.Write(b); err != nil {
			return "", fmt.Errorf("loopcert: %w", err)
		}
		return f.Name(), nil
	}
	ext := filepath.Ext(pattern)
	base := pattern[:len(pattern)-len(ext)]
	if certFile, err = write(base+"-cert"+ext, c.CertPEM); err != nil {
		return "", "", err
	}
	if keyFile, err = write(base+"-key"+ext, c.KeyPEM); err != nil {
		os.Remove(certFile)
		return "", "", err
	}
	return certFile, keyFile, nil
}
