package systemtest

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// loopbackResolver answers every test host name with 127.0.0.1, so real
// provider names can be used without traffic leaving the machine.
type loopbackResolver map[string]bool

func (r loopbackResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if r[host] {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func profileFor(s *smtptest.Server, password string) map[string]any {
	return map[string]any{"sender_name": "Acme Trading", "email": "acme@gmail.com", "password": password,
		"host": "127.0.0.1", "port": s.Port(), "security": "tls"}
}

func verifyError(t *testing.T, r response) map[string]any {
	t.Helper()
	body := r.json(t)
	if r.status != http.StatusOK || body["ok"] != false {
		t.Fatalf("verify: %d %s", r.status, r.body)
	}
	e, _ := body["error"].(map[string]any)
	return e
}

func TestVerify(t *testing.T) {
	ca := smtptest.NewCA(t)
	gmail := smtptest.Start(t, smtptest.Options{Users: map[string]string{"acme@gmail.com": "abcdefghijklmnop"},
		TLS: ptr(ca.Leaf(t, smtptest.LeafOptions{Hosts: []string{"smtp.gmail.com", "127.0.0.1"}}))})
	h := newHarness(t, options{roots: ca.Pool(), allowPrivate: true, resolver: loopbackResolver{"smtp.gmail.com": true}})
	path := "/v1/tenants/acme/smtp/verify"

	if r := h.do("POST", path, h.adminToken, nil); r.status != http.StatusNotFound || r.code(t) != "not_found" {
		t.Fatalf("verify without body or profile: %d %s", r.status, r.body)
	}

	// The way Google shows an App Password, on Google's host name.
	in := profileFor(gmail, "abcd efgh ijkl mnop")
	in["host"] = "smtp.gmail.com"
	if r := h.do("PUT", "/v1/tenants/acme/smtp", h.adminToken, in); r.status != http.StatusCreated {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	r := h.do("POST", path, h.adminToken, nil)
	body := r.json(t)
	if r.status != 200 || body["ok"] != true || body["tls_version"] != "TLS 1.3" || body["auth_mechanism"] != "PLAIN" {
		t.Fatalf("verify stored profile: %d %s", r.status, r.body)
	}

	// A PUT without password keeps the stored one: verify still logs in.
	delete(in, "password")
	in["sender_name"] = "Renamed"
	h.do("PUT", "/v1/tenants/acme/smtp", h.adminToken, in)
	if r := h.do("POST", path, h.adminToken, nil); r.json(t)["ok"] != true {
		t.Fatalf("verify after a PUT without password: %s", r.body)
	}

	// A submitted profile is tested without being stored; its missing
	// password comes from the stored profile.
	if r := h.do("POST", path, h.adminToken, in); r.json(t)["ok"] != true {
		t.Fatalf("verify body without password: %s", r.body)
	}
	in["password"] = "the account password"
	e := verifyError(t, h.do("POST", path, h.adminToken, in))
	if e["code"] != "auth_failed" || e["smtp_code"] != float64(535) || e["enhanced_code"] != "5.7.8" {
		t.Fatalf("wrong password: %v", e)
	}
	hint, _ := e["hint"].(string)
	if !strings.Contains(hint, "App Password") || !strings.Contains(hint, "2-Step Verification") {
		t.Errorf("hint: %q", hint)
	}
	if got := h.do("GET", "/v1/tenants/acme/smtp", h.adminToken, nil).json(t); got["sender_name"] != "Renamed" {
		t.Error("verify with a body changed the stored profile")
	}
	if strings.Contains(h.logs.String(), "the account password") {
		t.Error("password in logs")
	}
}

func TestVerifyEgressDenied(t *testing.T) {
	s := smtptest.Start(t, smtptest.Options{Users: map[string]string{"acme@gmail.com": "pw"}})
	h := newHarness(t, options{roots: s.CA.Pool(), allowPrivate: false})
	e := verifyError(t, h.do("POST", "/v1/tenants/acme/smtp/verify", h.adminToken, profileFor(s, "pw")))
	if e["code"] != "egress_denied" {
		t.Fatalf("127.0.0.1 with private networks refused: %v", e)
	}
	if s.Connections() != 0 {
		t.Fatalf("the guard let %d connections through", s.Connections())
	}
}

func TestVerifyUntrustedCertificate(t *testing.T) {
	s := smtptest.Start(t, smtptest.Options{Users: map[string]string{"acme@gmail.com": "pw"}})
	trusted := smtptest.NewCA(t) // not the CA that issued s's certificate
	h := newHarness(t, options{roots: trusted.Pool(), allowPrivate: true})
	e := verifyError(t, h.do("POST", "/v1/tenants/acme/smtp/verify", h.adminToken, profileFor(s, "pw")))
	if e["code"] != "tls_failed" || e["hint"] == "" {
		t.Fatalf("untrusted certificate: %v", e)
	}
	if s.AuthAttempts() != 0 {
		t.Fatal("password sent to a server with an untrusted certificate")
	}
}

func ptr[T any](v T) *T { return &v }

// fixedResolver answers each name with one address.
type fixedResolver map[string]netip.Addr

func (r fixedResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ip, ok := r[host]; ok {
		return []netip.Addr{ip}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// A refusal says what kind of address the host has, never which one: the
// caller would otherwise map the internal network name by name.
func TestVerifyEgressDeniedNamesNoAddress(t *testing.T) {
	h := newHarness(t, options{resolver: fixedResolver{"smtp.corp.example": netip.MustParseAddr("10.0.0.5")}})
	in := map[string]any{"email": "acme@corp.example", "password": "pw", "host": "smtp.corp.example", "port": 465}
	r := h.do("POST", "/v1/tenants/acme/smtp/verify", h.adminToken, in)
	e := verifyError(t, r)
	if e["code"] != "egress_denied" {
		t.Fatalf("a host on 10.0.0.5: %v", e)
	}
	if strings.Contains(string(r.body), "10.0.0.5") {
		t.Errorf("the answer names the resolved address: %s", r.body)
	}
	if msg, _ := e["message"].(string); !strings.Contains(msg, "smtp.corp.example") || !strings.Contains(msg, "private address") {
		t.Errorf("message %q does not say the host resolves to a private address", msg)
	}
}
