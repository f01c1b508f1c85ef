package smtptest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"testing"
	"time"
)

func TestLeafDefaultsAndHosts(t *testing.T) {
	ca := NewCA(t)
	leaf := ca.Leaf(t, LeafOptions{}).Leaf
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: ca.Pool()}); err != nil {
			t.Errorf("default leaf for %s: %v", host, err)
		}
	}
	named := ca.Leaf(t, LeafOptions{Hosts: []string{"smtp.gmail.com", "10.1.2.3"}}).Leaf
	if _, err := named.Verify(x509.VerifyOptions{DNSName: "smtp.gmail.com", Roots: ca.Pool()}); err != nil {
		t.Errorf("named leaf: %v", err)
	}
	if len(named.IPAddresses) != 1 || !named.IPAddresses[0].Equal(net.ParseIP("10.1.2.3")) {
		t.Errorf("IP SANs = %v", named.IPAddresses)
	}
	if _, err := named.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: ca.Pool()}); err == nil {
		t.Error("leaf for other hosts verified for 127.0.0.1")
	}
}

func TestPEMRoundTrip(t *testing.T) {
	ca := NewCA(t)
	block, rest := pem.Decode(ca.PEM())
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("PEM = %q", ca.PEM())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.PEM()) {
		t.Fatal("PEM not accepted by AppendCertsFromPEM")
	}
	if _, err := ca.Leaf(t, LeafOptions{}).Leaf.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Fatal(err)
	}
}

func TestUntrustedCAFailsHandshake(t *testing.T) {
	s := Start(t, Options{Users: map[string]string{"u": "p"}})
	other := NewCA(t)
	_, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: other.Pool(), ServerName: "127.0.0.1"})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("dial trusting another CA: %v", err)
	}
	waitFor(t, "the refused connection to close", func() bool { return s.OpenConnections() == 0 })
	if s.Connections() != 1 || s.AuthAttempts() != 0 {
		t.Fatalf("connections %d, auth attempts %d", s.Connections(), s.AuthAttempts())
	}
}

func TestExpiredLeafFailsVerification(t *testing.T) {
	ca := NewCA(t)
	expired := ca.Leaf(t, LeafOptions{NotAfter: time.Now().Add(-time.Hour)})
	s := Start(t, Options{TLS: &expired})
	if s.CA != nil {
		t.Error("Server.CA set although Options.TLS was given")
	}
	_, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	var invalid x509.CertificateInvalidError
	if !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Fatalf("dial to a server with an expired certificate: %v", err)
	}
}
