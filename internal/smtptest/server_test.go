package smtptest

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func dial(t *testing.T, s *Server) *smtp.Client {
	t.Helper()
	conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: s.CA.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClient(conn)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestServerRecordsAndRefuses(t *testing.T) {
	s := Start(t, Options{Users: map[string]string{"u": "p"}})
	c := dial(t, s)

	var se *smtp.SMTPError
	if err := c.Mail("a@example.com", nil); !errors.As(err, &se) || se.Code != 530 {
		t.Fatalf("MAIL before AUTH: %v", err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "u", "wrong")); !errors.As(err, &se) || se.Code != 535 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 8}) {
		t.Fatalf("wrong password: %v", err)
	}
	c = dial(t, s)
	if err := c.Auth(sasl.NewPlainClient("", "u", "p")); err != nil {
		t.Fatal(err)
	}
	body := "Subject: x\r\n\r\nhello\r\n"
	if err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	m := s.WaitMessages(t, 1, time.Second)[0]
	if m.From != "a@example.com" || m.To[0] != "b@example.com" || string(m.Data) != body || m.Username != "u" || m.ConnID != 2 {
		t.Fatalf("recorded %+v", m)
	}
	if s.Connections() != 2 || s.Auths() != 1 || s.AuthAttempts() != 2 {
		t.Fatalf("connections %d auths %d attempts %d", s.Connections(), s.Auths(), s.AuthAttempts())
	}
	s.DropConnections()
	if err := c.Noop(); err == nil {
		t.Fatal("connection still open after DropConnections")
	}
}

func TestStartTLSNotOfferedSeesClearTextAuth(t *testing.T) {
	s := Start(t, Options{Users: map[string]string{"u": "p"}, Mode: STARTTLSNotOffered})
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Fatal("STARTTLS offered")
	}
	c.Auth(sasl.NewPlainClient("", "u", "p")) // refused by go-smtp: not encrypted
	if s.AuthAttempts() != 1 {
		t.Fatalf("clear-text AUTH attempts = %d, want 1", s.AuthAttempts())
	}
}
