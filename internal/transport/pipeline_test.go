package transport

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// transactionModes are the ways a session sends a transaction: pipelined,
// over implicit TLS and over STARTTLS, and one command at a time.
var transactionModes = []struct {
	name      string
	pipelined bool
	mode      smtptest.Mode
	security  tenant.Security
}{
	{"pipelined", true, smtptest.ImplicitTLS, tenant.SecurityTLS},
	{"pipelined-starttls", true, smtptest.STARTTLS, tenant.SecurityStartTLS},
	{"one-command-at-a-time", false, smtptest.ImplicitTLS, tenant.SecurityTLS},
}

// eachTransactionMode runs a test on a session logged in to a server in
// each of transactionModes.
func eachTransactionMode(t *testing.T, test func(t *testing.T, c *Conn, s *smtptest.Server, pipelined bool)) {
	for _, mode := range transactionModes {
		t.Run(mode.name, func(t *testing.T) {
			s := smtptest.Start(t, smtptest.Options{Users: map[string]string{user: pass}, Mode: mode.mode})
			d := dialerFor(s)
			d.NoPipelining = !mode.pipelined
			c, err := d.Dial(context.Background(), serverFor(s, mode.security, pass))
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
// body with its dot in a second; for one recipient, BDAT carries the body
// in the same write as the commands. Without PIPELINING, each command is a
// write. The server receives the body as it was given, whichever way it
// went.
func TestPipeliningGroupsCommands(t *testing.T) {
	eachTransactionMode(t, func(t *testing.T, c *Conn, s *smtptest.Server, pipelined bool) {
		body := []byte("Subject: one\r\n\r\nhello\r\n.leading dot\r\n.\r\n..\r\nend\r\n")
		for _, tc := range []struct {
			rcpts                  []string
			body                   []byte // what is sent; body is what the server must receive
			pipelinedWrites, least int
		}{
			{[]string{"a@example.com", "b@example.com"}, body, 2, 5},
			{[]string{"a@example.com"}, body, 1, 4},
			// message.Compose ends its last line without CRLF; DATA's
			// writer and BDAT both add it.
			{[]string{"a@example.com"}, body[:len(body)-2], 1, 4},
		} {
			sent := len(s.Messages())
			before := c.raw.writes
			if _, err := c.Send(user, tc.rcpts, tc.body); err != nil {
				t.Fatal(err)
			}
			writes := c.raw.writes - before
			if !pipelined && writes < tc.least || pipelined && writes != tc.pipelinedWrites {
				t.Errorf("%d writes for %q to %d recipients (pipelined: %v)", writes, tc.body[len(tc.body)-5:], len(tc.rcpts), pipelined)
			}
			msg := s.WaitMessages(t, sent+1, time.Second)[sent]
			if len(msg.To) != len(tc.rcpts) || string(msg.Data) != string(body) {
				t.Errorf("server received %+v", msg)
			}
		}
	})
}

// What message.Compose writes is what the service sends: composed for one
// recipient, it goes as BDAT in one write, and arrives as composed, its
// last line ended. (Compose leaves that line open; the first BDAT kept to
// bodies that ended in CRLF and so never carried a real message.)
func TestComposedMessageGoesInOneWrite(t *testing.T) {
	eachTransactionMode(t, func(t *testing.T, c *Conn, s *smtptest.Server, pipelined bool) {
		req := &message.Request{TenantID: "acme", To: []message.Address{{Email: "client@example.com"}},
			Subject: "Invoice 42", Text: strings.Repeat("Your invoice is attached. ", 60)}
		var composed bytes.Buffer
		err := message.Compose(&composed, req, message.Header{From: message.Address{Email: user},
			MessageID: "<42@example.com>", Date: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		before := c.raw.writes
		if _, err := c.Send(user, req.Recipients(), composed.Bytes()); err != nil {
			t.Fatal(err)
		}
		if writes := c.raw.writes - before; pipelined && writes != 1 {
			t.Errorf("a composed message took %d writes, want 1 (BDAT)", writes)
		}
		got := string(s.WaitMessages(t, 1, time.Second)[0].Data)
		if want := strings.TrimSuffix(composed.String(), "\r\n") + "\r\n"; got != want {
			t.Errorf("server received\n%q\nwant\n%q", got, want)
		}
	})
}

// A body with bare LFs goes as DATA even where BDAT could carry it: DATA's
// writer makes its lines CRLF, as SMTP wants them.
func TestBareLineFeedsAreRepaired(t *testing.T) {
	eachTransactionMode(t, func(t *testing.T, c *Conn, s *smtptest.Server, pipelined bool) {
		if _, err := c.Send(user, []string{"a@example.com"}, []byte("Subject: lf\n\nfirst\nsecond")); err != nil {
			t.Fatal(err)
		}
		if got := string(s.WaitMessages(t, 1, time.Second)[0].Data); got != "Subject: lf\r\n\r\nfirst\r\nsecond\r\n" {
			t.Errorf("server received %q", got)
		}
	})
}

func TestHasBareLF(t *testing.T) {
	for in, want := range map[string]bool{
		"a\r\nb\r\n": false, "\r\n": false, "a\r\nb": false, "": false, "a\rb": false,
		"a\nb\r\n": true, "\n": true, "a\r\n\n": true, "a\r\nb\n": true,
	} {
		if got := hasBareLF([]byte(in)); got != want {
			t.Errorf("hasBareLF(%q) = %v", in, got)
		}
	}
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
		for _, rcpts := range [][]string{{"a@example.com", "b@example.com"}, {"a@example.com"}} {
			_, err := c.Send(user, rcpts, body)
			e := mustTransportError(t, err)
			if e.Stage != StageMail || e.SMTPCode != 451 || e.EnhancedCode != "4.7.1" || e.Permanent() || !c.Reusable(err) {
				t.Fatalf("refused MAIL, %d recipients: %+v (reusable %v)", len(rcpts), e, c.Reusable(err))
			}
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

// refuseSome has the server refuse later@ for now and gone@ for good.
func refuseSome(to string) *smtp.SMTPError {
	switch to {
	case "later@example.com":
		return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "try again later"}
	case "gone@example.com":
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return nil
}

// A recipient refused for now or for good holds back none of the others:
// the message goes to the accepted ones in the same transaction, the
// result lists the refused ones with their replies, and the session
// carries the next message. With every recipient refused nothing is sent
// and the refusal for now is the error.
func TestPartialRefusalSendsToTheAccepted(t *testing.T) {
	eachTransactionMode(t, func(t *testing.T, c *Conn, s *smtptest.Server, pipelined bool) {
		s.SetHooks(smtptest.Hooks{Rcpt: refuseSome})
		body := []byte("Subject: partly\r\n\r\nx\r\n")
		res, err := c.Send(user, []string{"ok@example.com", "later@example.com", "gone@example.com"}, body)
		if err != nil || !c.Reusable(err) {
			t.Fatalf("partial refusal: %v (reusable %v)", err, c.Reusable(err))
		}
		want := Result{Reply: res.Reply,
			Rejected: []Rejection{{Email: "gone@example.com", SMTPCode: 550, EnhancedCode: "5.1.1", Message: "no such user"}},
			Deferred: []Rejection{{Email: "later@example.com", SMTPCode: 450, EnhancedCode: "4.2.0", Message: "try again later"}}}
		if !reflect.DeepEqual(res, want) {
			t.Fatalf("result %+v, want %+v", res, want)
		}
		if msg := s.WaitMessages(t, 1, time.Second)[0]; !reflect.DeepEqual(msg.To, []string{"ok@example.com"}) {
			t.Fatalf("body went to %v", msg.To)
		}

		res, err = c.Send(user, []string{"later@example.com", "gone@example.com"}, body)
		e := mustTransportError(t, err)
		if e.Stage != StageRcpt || e.SMTPCode != 450 || e.Permanent() || !c.Reusable(err) ||
			len(res.Deferred) != 1 || len(res.Rejected) != 1 {
			t.Fatalf("every recipient refused: %+v %+v (reusable %v)", e, res, c.Reusable(err))
		}

		s.SetHooks(smtptest.Hooks{})
		if _, err := c.Send(user, []string{"later@example.com"}, body); err != nil {
			t.Fatalf("retry of the deferred recipient: %v", err)
		}
		msgs := s.WaitMessages(t, 2, time.Second)
		if len(msgs) != 2 || msgs[1].ConnID != msgs[0].ConnID || s.Auths() != 1 {
			t.Fatalf("%d messages, connections %d and %d, %d logins", len(msgs), msgs[0].ConnID, msgs[1].ConnID, s.Auths())
		}
	})
}

// A connection lost after the final dot is ambiguous for the recipients
// that accepted the message; the refused ones keep their replies.
func TestLostAfterDotKeepsTheRefusals(t *testing.T) {
	eachTransactionMode(t, func(t *testing.T, c *Conn, s *smtptest.Server, pipelined bool) {
		s.SetHooks(smtptest.Hooks{Rcpt: refuseSome, DropAfterData: func(smtptest.Message) bool { return true }})
		res, err := c.Send(user, []string{"ok@example.com", "later@example.com", "gone@example.com"}, []byte("Subject: x\r\n\r\nx\r\n"))
		e := mustTransportError(t, err)
		if !e.Ambiguous || len(res.Deferred) != 1 || res.Deferred[0].Email != "later@example.com" ||
			len(res.Rejected) != 1 || res.Rejected[0].Email != "gone@example.com" {
			t.Fatalf("%+v %+v", e, res)
		}
		if msgs := s.WaitMessages(t, 1, time.Second); !reflect.DeepEqual(msgs[0].To, []string{"ok@example.com"}) {
			t.Fatalf("body went to %v", msgs[0].To)
		}
	})
}

// A refused transaction is ended with RSET, and the next one goes on the
// same session without another EHLO (go-smtp's Reset would forget the
// EHLO and say it again: a round trip each time).
func TestNoEHLOAfterRefusedTransaction(t *testing.T) {
	eachTransactionMode(t, func(t *testing.T, c *Conn, s *smtptest.Server, pipelined bool) {
		before := s.Hellos()
		s.SetHooks(smtptest.Hooks{Rcpt: refuseSome})
		body := []byte("Subject: x\r\n\r\nx\r\n")
		for _, rcpts := range [][]string{{"gone@example.com"}, {"later@example.com", "gone@example.com"}, {"ok@example.com"}} {
			if _, err := c.Send(user, rcpts, body); err != nil && !c.Reusable(err) {
				t.Fatalf("%v: %v", rcpts, err)
			}
		}
		if _, err := c.Send(user, []string{"ok@example.com"}, body); err != nil {
			t.Fatal(err)
		}
		if n := s.Hellos() - before; n != 0 {
			t.Fatalf("%d EHLO after refused transactions, want none", n)
		}
		if err := c.Quit(); err != nil {
			t.Fatal(err)
		}
		if n := s.Hellos() - before; n != 0 {
			t.Fatalf("%d EHLO before QUIT, want none", n)
		}
	})
}

// A sole recipient refused, for now or for good, sends nothing. Pipelined
// to a server with CHUNKING, the body has already left behind a BDAT the
// server refuses too; the session stays in step for the next message.
func TestSoleRecipientRefusalSendsNothing(t *testing.T) {
	eachTransactionMode(t, func(t *testing.T, c *Conn, s *smtptest.Server, pipelined bool) {
		s.SetHooks(smtptest.Hooks{Rcpt: func(to string) *smtp.SMTPError {
			switch to {
			case "full@example.com":
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
			case "gone@example.com":
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		}})
		for _, rcpt := range []string{"full@example.com", "gone@example.com"} {
			_, err := c.Send(user, []string{rcpt}, []byte("Subject: refused\r\n\r\nx\r\n"))
			e := mustTransportError(t, err)
			if e.Stage != StageRcpt || e.Ambiguous || !c.Reusable(err) {
				t.Fatalf("%s: %+v (reusable %v)", rcpt, e, c.Reusable(err))
			}
		}
		if _, err := c.Send(user, []string{"ok@example.com"}, []byte("Subject: taken\r\n\r\ny\r\n")); err != nil {
			t.Fatalf("next message: %v", err)
		}
		s.WaitMessages(t, 1, time.Second)
		time.Sleep(50 * time.Millisecond)
		if msgs := s.Messages(); len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Subject: taken") {
			t.Fatalf("server recorded %d messages, first %q", len(msgs), msgs[0].Data)
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
