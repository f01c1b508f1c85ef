package transport

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
)

const (
	user = "acme@gmail.com"
	pass = "abcdefghijklmnop"
)

// resolver points test host names at loopback, so a test can use the
// provider's real host name (for hints and certificate checks) without
// any traffic leaving the machine.
type resolver map[string]string

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ip, ok := r[host]; ok {
		return []netip.Addr{netip.MustParseAddr(ip)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func dialerFor(s *smtptest.Server) *Dialer {
	var roots *x509.CertPool // nil: the system roots, which trust no test CA
	if s.CA != nil {
		roots = s.CA.Pool()
	}
	return &Dialer{
		Resolver:       resolver{"smtp.gmail.com": "127.0.0.1", "mail.test.example": "127.0.0.1"},
		AllowPrivate:   true,
		RootCAs:        roots,
		HeloName:       "outbound.test",
		ConnectTimeout: 3 * time.Second,
		CommandTimeout: 3 * time.Second,
		DataTimeout:    3 * time.Second,
	}
}

func serverFor(s *smtptest.Server, sec tenant.Security, password string) Server {
	return Server{Host: "127.0.0.1", Port: s.Port(), Security: sec, Auth: tenant.AuthPlain,
		Username: user, Password: secret.New(password)}
}

func mustTransportError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *transport.Error", err, err)
	}
	return e
}

func TestDialAndSendOverImplicitTLSAndSTARTTLS(t *testing.T) {
	for _, tc := range []struct {
		mode smtptest.Mode
		sec  tenant.Security
	}{{smtptest.ImplicitTLS, tenant.SecurityTLS}, {smtptest.STARTTLS, tenant.SecurityStartTLS}} {
		t.Run(string(tc.sec), func(t *testing.T) {
			s := smtptest.Start(t, smtptest.Options{Users: map[string]string{user: pass}, Mode: tc.mode})
			d := dialerFor(s)
			c, err := d.Dial(context.Background(), serverFor(s, tc.sec, pass))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Quit()
			if c.TLSVersion != "TLS 1.3" || c.Mechanism != "PLAIN" {
				t.Errorf("session: %s %s", c.TLSVersion, c.Mechanism)
			}
			body := []byte("Subject: one\r\n\r\nhello\r\n")
			for range 2 {
				if _, err := c.Send(user, []string{"a@example.com", "b@example.com"}, body); err != nil {
					t.Fatal(err)
				}
			}
			msgs := s.WaitMessages(t, 2, 2*time.Second)
			if msgs[0].From != user || len(msgs[0].To) != 2 || string(msgs[0].Data) != string(body) {
				t.Errorf("server received %+v", msgs[0])
			}
			if s.Connections() != 1 || s.Auths() != 1 {
				t.Errorf("two messages used %d connections and %d logins, want 1 and 1", s.Connections(), s.Auths())
			}
		})
	}
}

func TestVerifyWrongPasswordGivesGmailHint(t *testing.T) {
	// The provider's own host name, resolved to a loopback test server that
	// holds a certificate for that name from a test CA.
	ca := smtptest.NewCA(t)
	s := smtptest.Start(t, smtptest.Options{Users: map[string]string{user: pass},
		TLS: ptr(ca.Leaf(t, smtptest.LeafOptions{Hosts: []string{"smtp.gmail.com"}}))})
	d := dialerFor(s)
	d.RootCAs = ca.Pool()
	srv := serverFor(s, tenant.SecurityTLS, "wrong password")
	srv.Host = "smtp.gmail.com"

	_, err := d.Verify(context.Background(), srv)
	e := mustTransportError(t, err)
	if e.Code != CodeAuthFailed || e.SMTPCode != 535 || e.EnhancedCode != "5.7.8" {
		t.Fatalf("error = %+v", e)
	}
	if !strings.Contains(e.Hint, "App Password") || !strings.Contains(e.Hint, "2-Step Verification") {
		t.Errorf("hint does not explain App Passwords: %q", e.Hint)
	}
	if strings.Contains(e.Error(), "wrong password") || strings.Contains(e.Message, "wrong password") {
		t.Error("error text contains the password")
	}

	srv.Password = secret.New(pass)
	v, err := d.Verify(context.Background(), srv)
	if err != nil || v.Mechanism != "PLAIN" || v.TLSVersion == "" {
		t.Fatalf("verify with the right password: %+v %v", v, err)
	}
}

func TestVerifyEgressDeniedWithoutDialling(t *testing.T) {
	s := smtptest.Start(t, smtptest.Options{Users: map[string]string{user: pass}})
	d := dialerFor(s)
	d.AllowPrivate = false
	for _, host := range []string{"127.0.0.1", "mail.test.example", "localhost"} {
		srv := serverFor(s, tenant.SecurityTLS, pass)
		srv.Host = host
		_, err := d.Verify(context.Background(), srv)
		if e := mustTransportError(t, err); e.Code != CodeEgressDenied || e.Hint == "" {
			t.Errorf("%s: %+v", host, e)
		}
	}
	if n := s.Connections(); n != 0 {
		t.Fatalf("the guard let %d connections through", n)
	}
	// The operator's own relay is trusted.
	srv := serverFor(s, tenant.SecurityTLS, pass)
	srv.Trusted = true
	if _, err := d.Verify(context.Background(), srv); err != nil {
		t.Fatalf("trusted relay refused: %v", err)
	}
}

func TestTLSFailures(t *testing.T) {
	other := smtptest.NewCA(t) // a CA the client does not trust
	s := smtptest.Start(t, smtptest.Options{Users: map[string]string{user: pass}})
	cases := map[string]smtptest.Options{
		"untrusted": {Users: map[string]string{user: pass}, TLS: ptr(other.Leaf(t, smtptest.LeafOptions{}))},
		"expired": {Users: map[string]string{user: pass}, TLS: ptr(s.CA.Leaf(t, smtptest.LeafOptions{
			NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}))},
		"wrong host": {Users: map[string]string{user: pass}, TLS: ptr(s.CA.Leaf(t, smtptest.LeafOptions{Hosts: []string{"elsewhere.example"}}))},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			bad := smtptest.Start(t, opts)
			d := dialerFor(s) // trusts s.CA only
			_, err := d.Verify(context.Background(), serverFor(bad, tenant.SecurityTLS, pass))
			if e := mustTransportError(t, err); e.Code != CodeTLSFailed || e.Hint == "" {
				t.Fatalf("%+v", e)
			}
			if bad.AuthAttempts() != 0 {
				t.Error("password sent over an unverified connection")
			}
		})
	}
	t.Run("starttls not offered", func(t *testing.T) {
		plain := smtptest.Start(t, smtptest.Options{Users: map[string]string{user: pass}, Mode: smtptest.STARTTLSNotOffered})
		_, err := dialerFor(s).Verify(context.Background(), serverFor(plain, tenant.SecurityStartTLS, pass))
		if e := mustTransportError(t, err); e.Code != CodeTLSFailed || !strings.Contains(e.Hint, "STARTTLS") {
			t.Fatalf("%+v", e)
		}
		if plain.AuthAttempts() != 0 {
			t.Fatal("AUTH attempted on an unencrypted connection")
		}
	})
	t.Run("implicit TLS against a plain port", func(t *testing.T) {
		plain := smtptest.Start(t, smtptest.Options{Users: map[string]string{user: pass}, Mode: smtptest.STARTTLS})
		_, err := dialerFor(plain).Verify(context.Background(), serverFor(plain, tenant.SecurityTLS, pass))
		if e := mustTransportError(t, err); e.Code != CodeTLSFailed && e.Code != CodeTimeout {
			t.Fatalf("%+v", e)
		}
	})
}

func TestConnectFailures(t *testing.T) {
	s := smtptest.Start(t, smtptest.Options{Users: map[string]string{user: pass}})
	d := dialerFor(s)

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := serverFor(s, tenant.SecurityTLS, pass)
	srv.Port = closedPort
	if e := mustTransportError(t, errOf(d.Verify(context.Background(), srv))); e.Code != CodeConnectFailed {
		t.Errorf("closed port: %+v", e)
	}

	srv = serverFor(s, tenant.SecurityTLS, pass)
	srv.Host = "nowhere.test.example"
	if e := mustTransportError(t, errOf(d.Verify(context.Background(), srv))); e.Code != CodeDNSFailed {
		t.Errorf("unknown host: %+v", e)
	}

	// A server that accepts TCP and never speaks.
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	d.ConnectTimeout = 300 * time.Millisecond
	srv = serverFor(s, tenant.SecurityStartTLS, pass)
	srv.Port = silent.Addr().(*net.TCPAddr).Port
	start := time.Now()
	if e := mustTransportError(t, errOf(d.Verify(context.Background(), srv))); e.Code != CodeTimeout {
		t.Errorf("silent server: %+v", e)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("timeout took %v", time.Since(start))
	}
}

func TestSendClassifiesReplies(t *testing.T) { eachTransactionMode(t, testSendClassifiesReplies) }

func testSendClassifiesReplies(t *testing.T, c *Conn, s *smtptest.Server, _ bool) {
	body := []byte("Subject: x\r\n\r\nx\r\n")

	s.SetHooks(smtptest.Hooks{Rcpt: func(to string) *smtp.SMTPError {
		if to == "gone@example.com" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	res, err := c.Send(user, []string{"gone@example.com", "ok@example.com"}, body)
	if err != nil || len(res.Rejected) != 1 || res.Rejected[0].EnhancedCode != "5.1.1" {
		t.Fatalf("partial refusal: %+v %v", res, err)
	}
	res, err = c.Send(user, []string{"gone@example.com"}, body)
	if e := mustTransportError(t, err); e.SMTPCode != 550 || !e.Permanent() || len(res.Rejected) != 1 {
		t.Fatalf("all refused: %+v %+v", e, res)
	}
	if !c.Reusable(err) {
		t.Fatal("session not reusable after a refused transaction")
	}

	s.SetHooks(smtptest.Hooks{Data: func(smtptest.Message) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	}})
	_, err = c.Send(user, []string{"ok@example.com"}, body)
	if e := mustTransportError(t, err); e.SMTPCode != 451 || e.Permanent() || e.Stage != StageData {
		t.Fatalf("451: %+v", e)
	}
	s.SetHooks(smtptest.Hooks{})
	if _, err := c.Send(user, []string{"ok@example.com"}, body); err != nil {
		t.Fatalf("send after reset: %v", err)
	}
}

func TestLostAfterFinalDotIsAmbiguous(t *testing.T) {
	eachTransactionMode(t, testLostAfterFinalDotIsAmbiguous)
}

func testLostAfterFinalDotIsAmbiguous(t *testing.T, c *Conn, s *smtptest.Server, _ bool) {
	s.SetHooks(smtptest.Hooks{DropAfterData: func(smtptest.Message) bool { return true }})
	_, err := c.Send(user, []string{"ok@example.com"}, []byte("Subject: x\r\n\r\nx\r\n"))
	e := mustTransportError(t, err)
	if !e.Ambiguous || e.Code != CodeConnectionLost || e.Permanent() {
		t.Fatalf("%+v", e)
	}
	if len(s.Messages()) != 1 {
		t.Fatal("server did not record the message it took")
	}
	if c.Reusable(err) {
		t.Fatal("dead session reported reusable")
	}
}

func TestServerKey(t *testing.T) {
	a := Server{Host: "smtp.gmail.com", Port: 465, Security: tenant.SecurityTLS, Auth: tenant.AuthPlain, Username: user, Password: secret.New(pass)}
	b := a
	if a.Key() != b.Key() {
		t.Fatal("same account, different keys")
	}
	b.Password = secret.New("other")
	if a.Key() == b.Key() {
		t.Fatal("changed password keeps the key: an old session would be reused")
	}
	if strings.Contains(a.Key(), pass) {
		t.Fatal("key holds the password")
	}
}

func ptr[T any](v T) *T { return &v }

func errOf(_ Verified, err error) error { return err }

func TestOAuthLogins(t *testing.T) {
	bearer := func(u, token string) bool { return u == user && token == "good-token" }
	for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run(mech, func(t *testing.T) {
			ca := smtptest.NewCA(t)
			s := smtptest.Start(t, smtptest.Options{Mechanisms: []string{mech}, Bearer: bearer,
				TLS: ptr(ca.Leaf(t, smtptest.LeafOptions{Hosts: []string{"smtp.office365.com"}})), Mode: smtptest.STARTTLS})
			d := dialerFor(s)
			d.RootCAs = ca.Pool()
			d.Resolver = resolver{"smtp.office365.com": "127.0.0.1"}
			srv := Server{Host: "smtp.office365.com", Port: s.Port(), Security: tenant.SecurityStartTLS, Auth: tenant.AuthXOAuth2,
				Username: user, Token: secret.New("good-token"), Grant: "app"}
			v, err := d.Verify(context.Background(), srv)
			if err != nil || v.Mechanism != mech {
				t.Fatalf("verify: %+v %v", v, err)
			}
			srv.Token = secret.New("revoked-token")
			_, err = d.Verify(context.Background(), srv)
			e := mustTransportError(t, err)
			if e.Code != CodeAuthFailed || !strings.Contains(e.Hint, "SMTP.SendAsApp") {
				t.Fatalf("refused token: %+v", e)
			}
			if strings.Contains(e.Error(), "revoked-token") {
				t.Fatal("error holds the token")
			}
		})
	}
}

func TestBasicAuthDisabledHintNamesOAuth(t *testing.T) {
	ca := smtptest.NewCA(t)
	s := smtptest.Start(t, smtptest.Options{Users: map[string]string{user: pass}, Mode: smtptest.STARTTLS,
		TLS: ptr(ca.Leaf(t, smtptest.LeafOptions{Hosts: []string{"smtp.office365.com"}})),
		Hooks: smtptest.Hooks{Auth: func(string) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 139},
				Message: "Authentication unsuccessful, basic authentication is disabled."}
		}}})
	d := dialerFor(s)
	d.RootCAs = ca.Pool()
	d.Resolver = resolver{"smtp.office365.com": "127.0.0.1"}
	srv := serverFor(s, tenant.SecurityStartTLS, pass)
	srv.Host = "smtp.office365.com"
	_, err := d.Verify(context.Background(), srv)
	e := mustTransportError(t, err)
	if e.EnhancedCode != "5.7.139" || !strings.Contains(e.Hint, "OAuth2") || !strings.Contains(e.Hint, "microsoft365") {
		t.Fatalf("%+v", e)
	}
}
