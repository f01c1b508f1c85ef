package postfixtest

import (
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TestPostfixTakesSubmissionsOnBothPorts submits over implicit TLS and
// STARTTLS with AUTH PLAIN and checks what the access map refuses, what
// lands in the mailbox, and that Postfix logged no warning.
func TestPostfixTakesSubmissionsOnBothPorts(t *testing.T) {
	s := Start(t, Options{
		Users:  map[string]string{"acme@gmail.test": "p@ss word", "beta": "beta-pass"},
		Refuse: map[string]string{"gone@example.com": "550 5.1.1 no such user", "later@example.com": "450 4.2.0 try later"},
	})
	cfg := &tls.Config{RootCAs: s.CA.Pool(), ServerName: "localhost"}
	addr := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

	send(t, addr(s.SMTPSPort), false, cfg, "acme@gmail.test", "p@ss word", "<one@acme.test>",
		map[string]int{"a@example.com": 250, "gone@example.com": 550, "later@example.com": 450})
	send(t, addr(s.SubmissionPort), true, cfg, "beta", "beta-pass", "<two@beta.test>",
		map[string]int{"b@example.org": 250})

	// A new session sees a changed access map.
	if err := s.SetRefusals(map[string]string{"gone@example.com": "550 5.1.1 no such user"}); err != nil {
		t.Fatal(err)
	}
	send(t, addr(s.SMTPSPort), false, cfg, "acme@gmail.test", "p@ss word", "<three@acme.test>",
		map[string]int{"later@example.com": 250})

	s.WaitDeliveries(t, 3, 10*time.Second)
	s.WaitQueueEmpty(t, 10*time.Second)
	got := s.Deliveries(t)
	seen := map[string]string{}
	for _, d := range got {
		seen[d.Recipient] = string(d.Raw)
	}
	if len(got) != 3 || !strings.Contains(seen["a@example.com"], "<one@acme.test>") ||
		!strings.Contains(seen["b@example.org"], "<two@beta.test>") || !strings.Contains(seen["later@example.com"], "<three@acme.test>") {
		t.Errorf("deliveries: %v", seen)
	}
	if w := s.Warnings(); len(w) > 0 {
		t.Errorf("postfix warnings:\n%s", strings.Join(w, "\n"))
	}

	// Last, since Postfix logs a refused login as a warning.
	c, err := smtp.DialTLS(addr(s.SMTPSPort), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var se *smtp.SMTPError
	if err := c.Auth(sasl.NewPlainClient("", "acme@gmail.test", "wrong")); !errors.As(err, &se) || se.Code != 535 {
		t.Errorf("AUTH with a wrong password: %v, want 535", err)
	}
}

// send submits one message and checks each RCPT's reply code.
func send(t *testing.T, addr string, starttls bool, cfg *tls.Config, user, pass, msgID string, rcpts map[string]int) {
	t.Helper()
	var c *smtp.Client
	var err error
	if starttls {
		c, err = smtp.DialStartTLS(addr, cfg)
	} else {
		c, err = smtp.DialTLS(addr, cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatalf("AUTH %s: %v", user, err)
	}
	if err := c.Mail("sender@example.net", nil); err != nil {
		t.Fatal(err)
	}
	for rcpt, want := range rcpts {
		err := c.Rcpt(rcpt, nil)
		code := 250
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			code = se.Code
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Errorf("RCPT %s: %d (%v), want %d", rcpt, code, err, want)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("From: sender@example.net\r\nTo: a@example.com\r\nSubject: hi\r\nMessage-ID: " + msgID +
		"\r\nDate: Tue, 1 Dec 2026 20:00:00 +0000\r\n\r\nhello\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}
