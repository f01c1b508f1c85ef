package smtptest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// mustClient dials s the way its Mode asks (implicit TLS, STARTTLS, plain)
// and returns a go-smtp client closed at the end of the test.
func mustClient(t *testing.T, s *Server) *smtp.Client {
	t.Helper()
	var c *smtp.Client
	switch s.opts.Mode {
	case ImplicitTLS:
		conn, err := tls.Dial("tcp", s.Addr(), clientTLS(s))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c = smtp.NewClient(conn)
	case STARTTLS:
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if c, err = smtp.NewClientStartTLS(conn, clientTLS(s)); err != nil {
			t.Fatalf("STARTTLS: %v", err)
		}
	default:
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = 10 * time.Second
	c.SubmissionTimeout = 10 * time.Second
	t.Cleanup(func() { c.Close() })
	return c
}

func clientTLS(s *Server) *tls.Config {
	return &tls.Config{RootCAs: s.CA.Pool(), ServerName: s.Host()}
}

// mustLogin dials and logs in with AUTH PLAIN.
func mustLogin(t *testing.T, s *Server, user, pass string) *smtp.Client {
	t.Helper()
	c := mustClient(t, s)
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	return c
}

func send(c *smtp.Client, from string, to []string, body string) error {
	return c.SendMail(from, to, strings.NewReader(body))
}

// wantSMTP fails unless err is an *smtp.SMTPError with this code and
// enhanced code.
func wantSMTP(t *testing.T, err error, code int, enhanced smtp.EnhancedCode) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != code || se.EnhancedCode != enhanced {
		t.Fatalf("got %v, want SMTP %d %d.%d.%d", err, code, enhanced[0], enhanced[1], enhanced[2])
	}
}

// wantNetwork fails unless err is an error that is not an SMTP reply.
func wantNetwork(t *testing.T, err error) {
	t.Helper()
	var se *smtp.SMTPError
	if err == nil || errors.As(err, &se) {
		t.Fatalf("got %v, want a network error and no SMTP reply", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeTB records Fatalf instead of stopping the test, to test helpers that
// fail their caller.
type fakeTB struct {
	testing.TB
	failure string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) { f.failure = fmt.Sprintf(format, args...) }
