package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The sink is a real SMTP server (go-smtp, implicit TLS, AUTH PLAIN
// accepting any login) that counts what it receives and discards it. It
// runs as its own process ("outbound-bench sink") so that its CPU time is
// not the load generator's.

type sinkCounts struct {
	Messages    int64 `json:"messages"`
	Connections int64 `json:"connections"`
	Logins      int64 `json:"logins"`
}

type sinkServer struct {
	counts struct{ messages, connections, logins atomic.Int64 }
}

// runSink serves SMTP on smtpAddr and the counts on httpAddr, writing the
// certificate's PEM to certFile, until killed.
func runSink(smtpAddr, httpAddr, certFile string) error {
	cert, certPEM, err := sinkCert()
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return err
	}
	s := &sinkServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		s.counts.connections.Add(1)
		return &sinkSession{s: s}, nil
	}))
	srv.Domain = "sink.bench"
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.MaxMessageBytes = 64 << 20
	srv.ErrorLog = quiet{}
	ln, err := tls.Listen("tcp", smtpAddr, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return err
	}
	http.HandleFunc("/counts", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(sinkCounts{Messages: s.counts.messages.Load(),
			Connections: s.counts.connections.Load(), Logins: s.counts.logins.Load()})
	})
	go http.ListenAndServe(httpAddr, nil)
	return srv.Serve(ln)
}

type sinkSession struct {
	s        *sinkServer
	loggedIn bool
}

func (se *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (se *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, _ string) error {
		se.loggedIn = username != ""
		se.s.counts.logins.Add(1)
		return nil
	}), nil
}
func (se *sinkSession) Mail(string, *smtp.MailOptions) error {
	if !se.loggedIn {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	return nil
}
func (se *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (se *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	se.s.counts.messages.Add(1)
	return nil
}
func (se *sinkSession) Reset()        {}
func (se *sinkSession) Logout() error { return nil }

type quiet struct{}

func (quiet) Printf(string, ...any) {}
func (quiet) Println(...any)        {}

// sinkCert makes a self-signed certificate for 127.0.0.1 that is its own
// root.
func sinkCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "bench sink"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("sink certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
