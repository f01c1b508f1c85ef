package smtptest

import (
	"crypto/tls"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func TestRcptHookRefusesOneAddress(t *testing.T) {
	s := Start(t, Options{Users: users, Hooks: Hooks{Rcpt: func(to string) *smtp.SMTPError {
		if to == "gone@example.com" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		}
		return nil
	}}})
	c := mustLogin(t, s, user, pass)
	if err := c.Mail("a@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.com", nil); err != nil {
		t.Fatal(err)
	}
	wantSMTP(t, c.Rcpt("gone@example.com", nil), 550, smtp.EnhancedCode{5, 1, 1})
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if m := s.WaitMessages(t, 1, 5*time.Second)[0]; !slices.Equal(m.To, []string{"b@example.com"}) {
		t.Fatalf("To = %v", m.To)
	}
}

func TestMailAndDataHooks(t *testing.T) {
	var seen atomic.Value
	s := Start(t, Options{Users: users, Hooks: Hooks{
		Mail: func(from string) *smtp.SMTPError {
			if from == "blocked@example.com" {
				return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender refused"}
			}
			return nil
		},
		Data: func(m Message) *smtp.SMTPError {
			seen.Store(string(m.Data))
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
		},
	}})
	c := mustLogin(t, s, user, pass)
	wantSMTP(t, c.Mail("blocked@example.com", nil), 553, smtp.EnhancedCode{5, 7, 1})
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	wantSMTP(t, send(c, "a@example.com", []string{"b@example.com"}, "body\r\n"), 451, smtp.EnhancedCode{4, 3, 0})
	if seen.Load() != "body\r\n" || len(s.Messages()) != 0 {
		t.Fatalf("Data hook saw %q; recorded %d messages", seen.Load(), len(s.Messages()))
	}

	// The connection stays usable, and healing the server lets mail in.
	s.SetHooks(Hooks{})
	if err := send(c, "a@example.com", []string{"b@example.com"}, "body\r\n"); err != nil {
		t.Fatal(err)
	}
	s.WaitMessages(t, 1, 5*time.Second)
}

func TestDropAfterDataRecordsWithoutReply(t *testing.T) {
	s := Start(t, Options{Users: users, Hooks: Hooks{DropAfterData: func(Message) bool { return true }}})
	c := mustLogin(t, s, user, pass)
	wantNetwork(t, send(c, "a@example.com", []string{"b@example.com"}, "ambiguous\r\n"))
	if m := s.WaitMessages(t, 1, 5*time.Second)[0]; string(m.Data) != "ambiguous\r\n" {
		t.Fatalf("recorded %q", m.Data)
	}
	waitFor(t, "the connection to close", func() bool { return s.OpenConnections() == 0 })
}

func TestDropMidDataRecordsNothing(t *testing.T) {
	for name, size := range map[string]int{"small": 10, "larger than socket buffers": 8 << 20} {
		t.Run(name, func(t *testing.T) {
			var envelope Message
			var calls atomic.Int32
			s := Start(t, Options{Users: users, Hooks: Hooks{DropMidData: func(m Message) bool {
				calls.Add(1)
				envelope = m // read after the client saw the drop
				return true
			}}})
			c := mustLogin(t, s, user, pass)
			body := strings.Repeat("0123456789abcdef\r\n", size/18+1)
			wantNetwork(t, send(c, "a@example.com", []string{"b@example.com"}, body))
			waitFor(t, "the connection to close", func() bool { return s.OpenConnections() == 0 })
			if calls.Load() != 1 || envelope.From != "a@example.com" || envelope.Data != nil {
				t.Fatalf("hook calls %d, envelope %+v", calls.Load(), envelope)
			}
			if n := len(s.Messages()); n != 0 {
				t.Fatalf("recorded %d messages", n)
			}
		})
	}
}

func TestStallDelaysReplies(t *testing.T) {
	const d = 300 * time.Millisecond
	var stage atomic.Value
	stage.Store("")
	s := Start(t, Options{Users: users, Hooks: Hooks{Stall: func(at string) time.Duration {
		if at == stage.Load() {
			return d
		}
		return 0
	}}})

	// Greeting: the TLS handshake is prompt, the 220 is late.
	stage.Store(StageGreeting)
	start := time.Now()
	conn, err := tls.Dial("tcp", s.Addr(), clientTLS(s))
	if err != nil {
		t.Fatal(err)
	}
	if e := time.Since(start); e >= d {
		t.Fatalf("TLS handshake took %v: the stall should come after it", e)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	if e := time.Since(start); e < d {
		t.Fatalf("greeting after %v, want at least %v", e, d)
	}
	stage.Store(StageAuth)
	start = time.Now()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatal(err)
	}
	if e := time.Since(start); e < d {
		t.Errorf("auth stall: AUTH took %v, want at least %v", e, d)
	}

	for _, at := range []string{StageMail, StageRcpt, StageData} {
		stage.Store(at)
		start := time.Now()
		if err := send(c, "a@example.com", []string{"b@example.com"}, "x\r\n"); err != nil {
			t.Fatal(err)
		}
		if e := time.Since(start); e < d {
			t.Errorf("%s stall: send took %v, want at least %v", at, e, d)
		}
	}

	// A client that gives up waiting sees a timeout, not a reply.
	stage.Store(StageMail)
	c.CommandTimeout = 50 * time.Millisecond
	wantNetwork(t, c.Mail("a@example.com", nil))
}

func TestAuthHookRefusesUntilHealed(t *testing.T) {
	var asked atomic.Value
	s := Start(t, Options{Users: users, Hooks: Hooks{Auth: func(username string) *smtp.SMTPError {
		asked.Store(username)
		return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many login attempts"}
	}}})
	wantSMTP(t, mustClient(t, s).Auth(sasl.NewPlainClient("", user, pass)), 454, smtp.EnhancedCode{4, 7, 0})
	if asked.Load() != user || s.Auths() != 0 {
		t.Fatalf("hook asked about %v, auths %d", asked.Load(), s.Auths())
	}

	s.SetHooks(Hooks{})
	mustLogin(t, s, user, pass)
	if s.Auths() != 1 || s.AuthAttempts() != 2 {
		t.Fatalf("auths %d, attempts %d", s.Auths(), s.AuthAttempts())
	}
}

func TestSetHooksWhileServing(t *testing.T) {
	s := Start(t, Options{Users: users})
	c := mustLogin(t, s, user, pass)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		refuse := &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				s.SetHooks(Hooks{Data: func(Message) *smtp.SMTPError { return refuse }})
			} else {
				s.SetHooks(Hooks{})
			}
		}
	}()
	for range 50 {
		if err := send(c, "a@example.com", []string{"b@example.com"}, "x\r\n"); err != nil {
			wantSMTP(t, err, 451, smtp.EnhancedCode{4, 3, 0})
		}
	}
	close(stop)
	<-done
}
