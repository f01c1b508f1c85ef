package transport

import (
	"context"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// transactionModes are the two ways a session sends a transaction.
var transactionModes = []struct {
	name      string
	pipelined bool
}{{"pipelined", true}, {"one-command-at-a-time", false}}

// eachTransactionMode runs a test on a session logged in to an
// implicit-TLS server, pipelined and then one command at a time.
func eachTransactionMode(t *testing.T, test func(t *testing.T, c *Conn, s *smtptest.Server, pipelined bool)) {
	for _, mode := range transactionModes {
		t.Run(mode.name, func(t *testing.T) {
			s := smtptest.Start(t, smtptest.Options{Users: map[string]string{user: pass}})
			d := dialerFor(s)
			d.NoPipelining = !mode.pipelined
			c, err := d.Dial(context.Background(), serverFor(s, tenant.SecurityTLS, pass))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if (c.pipe != nil) != mode.pipelined {
				t.Fatalf("session pipelined: %v, want %v", c.pipe != nil, mode.pipelined)
			}
			test(t, c, s, mode.pipelined)
		})
	}
}

// With PIPELINING, MAIL, both RCPTs and DATA leave in one write and the
// body with its dot in a second; without it, each command is a write.
func TestPipeliningGroupsCommands(t *testing.T) {
	eachTransactionMode(t, func(t *testing.T, c *Conn, s *smtptest.Server, pipelined bool) {
		body := []byte("Subject: one\r\n\r\nhello\r\n.leading dot\r\n")
		before := c.raw.writes
		if _, err := c.Send(user, []string{"a@example.com", "b@example.com"}, body); err != nil {
			t.Fatal(err)
		}
		writes := c.raw.writes - before
		if !pipelined && writes < 5 || pipelined && writes != 2 {
			t.Errorf("%d writes for one transaction with two recipients (pipelined: %v)", writes, pipelined)
		}
		msgs := s.WaitMessages(t, 1, time.Second)
		if len(msgs[0].To) != 2 || string(msgs[0].Data) != string(body) {
			t.Errorf("server received %+v", msgs[0])
		}
	})
}

// A refused MAIL FROM is that stage's error and the session carries the
// next message; the recipients' and DATA's replies to a refused MAIL are
// read and dropped, not taken for the next transaction's.
func TestRefusedMailKeepsTheSessionInStep(t *testing.T) {
	eachTransactionMode(t, func(t *testing.T, c *Conn, s *smtptest.Server, pipelined bool) {
		body := []byte("Subject: x\r\n\r\nx\r\n")
		s.SetHooks(smtptest.Hooks{Mail: func(string) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted, please retry"}
		}})
		_, err := c.Send(user, []string{"a@example.com", "b@example.com"}, body)
		e := mustTransportError(t, err)
		if e.Stage != StageMail || e.SMTPCode != 451 || e.EnhancedCode != "4.7.1" || e.Permanent() || !c.Reusable(err) {
			t.Fatalf("refused MAIL: %+v (reusable %v)", e, c.Reusable(err))
		}
		s.SetHooks(smtptest.Hooks{})
		if _, err := c.Send(user, []string{"a@example.com"}, body); err != nil {
			t.Fatalf("next message: %v", err)
		}
		if n := len(s.WaitMessages(t, 1, time.Second)); n != 1 {
			t.Fatalf("server has %d messages, want 1", n)
		}
	})
}

// One recipient refused for now defers the whole message. Pipelined, the
// server has already opened DATA for the other recipient: the session is
// dropped rather than sending an empty message with a lone dot.
func TestTemporaryRecipientRefusalSendsNothing(t *testing.T) {
	eachTransactionMode(t, func(t *testing.T, c *Conn, s *smtptest.Server, pipelined bool) {
		s.SetHooks(smtptest.Hooks{Rcpt: func(to string) *smtp.SMTPError {
			if to == "full@example.com" {
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
			}
			return nil
		}})
		_, err := c.Send(user, []string{"ok@example.com", "full@example.com"}, []byte("Subject: x\r\n\r\nx\r\n"))
		e := mustTransportError(t, err)
		if e.Stage != StageRcpt || e.SMTPCode != 452 || e.Permanent() {
			t.Fatalf("temporary refusal: %+v", e)
		}
		if pipelined == c.Reusable(err) {
			t.Errorf("reusable %v after the refusal (pipelined: %v)", c.Reusable(err), pipelined)
		}
		time.Sleep(100 * time.Millisecond)
		if n := len(s.Messages()); n != 0 {
			t.Fatalf("server recorded %d messages, want none", n)
		}
	})
}

func TestSMTPErrorTakesOffEnhancedCodes(t *testing.T) {
	se := smtpError(550, "5.1.1 no such user\n5.1.1 try another")
	if se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) || se.Message != "no such user\ntry another" {
		t.Errorf("%+v", se)
	}
	for _, text := range []string{"no code here", "5.1 short", "a.b.c letters", "single"} {
		if se := smtpError(451, text); se.Message != text || se.EnhancedCode != (smtp.EnhancedCode{}) {
			t.Errorf("%q: %+v", text, se)
		}
	}
}
