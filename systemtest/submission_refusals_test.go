package systemtest

import (
	"strings"
	"testing"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// wantReply fails unless r is code with the enhanced code enhanced and
// its text holds each of words.
func wantReply(t *testing.T, what string, r pyReply, code int, enhanced string, words ...string) {
	t.Helper()
	ok := r.Code == code && strings.HasPrefix(r.Text, enhanced+" ")
	for _, w := range words {
		ok = ok && strings.Contains(r.Text, w)
	}
	if !ok {
		t.Errorf("%s: %d %q, want %d %s naming %q", what, r.Code, r.Text, code, enhanced, words)
	}
}

// TestSubmitRefusesMalformedMessages sends messages the service will
// never take as they are, through Python's smtplib, and holds the reply
// to the README's table; nothing of them reaches the account.
func TestSubmitRefusesMalformedMessages(t *testing.T) {
	s := newSubmitSetup(t, smtptest.Options{})

	t.Run("too many recipients", func(t *testing.T) {
		msg := invoiceMail("Too many", "<many@acme.example>")
		msg.Rcpts = nil
		for i := range 101 { // one past the harness's OUTBOUND_MAX_RECIPIENTS
			msg.Rcpts = append(msg.Rcpts, "r"+itoa(i)+"@example.com")
		}
		res := pythonSubmit(t, s.job(t, "starttls", msg))
		wantReply(t, "the 101st RCPT", res.Sent[0], 452, "4.5.3")
	})
	t.Run("no From", func(t *testing.T) {
		msg := invoiceMail("No From", "<nofrom@acme.example>")
		msg.Data = []byte(strings.Replace(string(msg.Data), "From: Acme Billing <acme@gmail.com>\r\n", "", 1))
		res := pythonSubmit(t, s.job(t, "starttls", msg))
		wantReply(t, "a message without From", res.Sent[0], 550, "5.6.0", "From")
	})
	t.Run("duplicate Subject", func(t *testing.T) {
		msg := invoiceMail("Twice", "<twice@acme.example>")
		msg.Data = []byte(strings.Replace(string(msg.Data), "Subject: Twice\r\n", "Subject: Twice\r\nSubject: Again\r\n", 1))
		res := pythonSubmit(t, s.job(t, "starttls", msg))
		wantReply(t, "two Subject fields", res.Sent[0], 550, "5.6.0", "Subject")
	})
	t.Run("From not the account's address", func(t *testing.T) {
		msg := invoiceMail("Other From", "<otherfrom@acme.example>")
		msg.Data = []byte(strings.Replace(string(msg.Data), "<acme@gmail.com>", "<ceo@acme.example>", 1))
		res := pythonSubmit(t, s.job(t, "starttls", msg))
		wantReply(t, "a From other than the account's", res.Sent[0], 550, "5.7.1", "acme@gmail.com")
	})
	t.Run("MAIL without AUTH", func(t *testing.T) {
		job := s.job(t, "starttls", invoiceMail("No login", "<nologin@acme.example>"))
		job.NoLogin = true
		res := pythonSubmit(t, job)
		wantReply(t, "MAIL before a login", res.Sent[0], 530, "5.7.0")
	})
	for _, m := range s.account.Messages() {
		t.Errorf("the account received a refused message:\n%s", m.Data)
	}
}

// TestSubmitWhileRedisDown: with storage gone, a logged-in client's
// message gets 451 4.3.0, so it keeps the message and tries again.
func TestSubmitWhileRedisDown(t *testing.T) {
	s := newSubmitSetup(t, smtptest.Options{})
	s.redis.Stop(t)
	res := pythonSubmit(t, s.job(t, "starttls", invoiceMail("Redis down", "<down@acme.example>")))
	if res.Login.Code != 235 {
		t.Fatalf("login with Redis down: %d %q (a key from the configuration needs no Redis)", res.Login.Code, res.Login.Text)
	}
	wantReply(t, "a message while Redis is down", res.Sent[0], 451, "4.3.0")
}
