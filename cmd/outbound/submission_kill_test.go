package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// TestSubmissionSurvivesKill submits a message over SMTP to `outbound
// serve`, kills the process with SIGKILL the moment it has answered 250,
// and starts another: the message the 250 promised is delivered, once,
// as the client wrote it.
func TestSubmissionSurvivesKill(t *testing.T) {
	ca := smtptest.NewCA(t)
	certFile, keyFile, caFile := tlsFiles(t, ca)
	// The tenant's account holds every connection at the greeting while
	// the first process lives, so that process cannot have delivered the
	// message before it dies.
	var firstAlive atomic.Bool
	firstAlive.Store(true)
	leaf := ca.Leaf(t, smtptest.LeafOptions{})
	account := smtptest.Start(t, smtptest.Options{Users: map[string]string{"acme@gmail.test": "abcdefghijklmnop"}, TLS: &leaf,
		Hooks: smtptest.Hooks{Stall: func(stage string) time.Duration {
			if stage == smtptest.StageGreeting && firstAlive.Load() {
				return time.Minute
			}
			return 0
		}}})

	redis := redistest.Start(t)
	env, admin, send, submitPort := submissionEnv(t, redis.URL(), certFile, keyFile, caFile)
	first := startService(t, env, admin, send)
	if status, body := first.call(t, "PUT", "/v1/tenants/acme/smtp", admin, map[string]any{
		"sender_name": "Acme Trading", "email": "acme@gmail.test", "password": "abcdefghijklmnop",
		"host": "127.0.0.1", "port": account.Port(), "security": "tls"}); status != http.StatusCreated {
		t.Fatalf("PUT profile: %d %v", status, body)
	}

	subject := "Invoice 42, submitted before a crash"
	text := "Your invoice is attached in spirit.\r\nGrüße, Acme\r\n"
	raw := "From: Acme Billing <acme@gmail.test>\r\nTo: Client <client@example.com>\r\nBcc: archive@example.com\r\n" +
		"Subject: " + subject + "\r\nMessage-ID: <kill-1@acme.test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text
	id := submitOne(t, "127.0.0.1:"+strconv.Itoa(submitPort), caFile, send, []string{"client@example.com", "archive@example.com"}, raw)
	first.stop(syscall.SIGKILL, time.Second)
	if len(account.Messages()) != 0 {
		t.Fatal("the account received the message before the kill: the test proves nothing")
	}

	firstAlive.Store(false)
	second := startService(t, env, admin, send)
	second.waitStatus(t, id, "sent", 20*time.Second)
	msgs := account.WaitMessages(t, 1, 5*time.Second)
	time.Sleep(300 * time.Millisecond) // room for a duplicate, were one coming
	if n := len(account.Messages()); n != 1 {
		t.Errorf("the account received %d messages, want 1", n)
	}
	file := filepath.Join(t.TempDir(), "received.eml")
	must(t, os.WriteFile(file, msgs[0].Data, 0o600))
	got := pythonRead(t, []string{file})[0].Modern
	if got.Subject != subject || got.MessageID != "<kill-1@acme.test>" || got.HasBcc {
		t.Errorf("Python reads Subject %q, Message-ID %q, Bcc %v", got.Subject, got.MessageID, got.HasBcc)
	}
	if len(got.From) != 1 || got.From[0] != (pyAddr{"Acme Billing", "acme@gmail.test"}) ||
		len(got.To) != 1 || got.To[0] != (pyAddr{"Client", "client@example.com"}) {
		t.Errorf("Python reads From %+v To %+v", got.From, got.To)
	}
	if got.Text == nil || *got.Text != text {
		t.Errorf("Python reads the text %q, sent %q", deref(got.Text), text)
	}
	if !strings.HasSuffix(string(msgs[0].Data), "\r\n\r\n"+text) {
		t.Errorf("the body was not sent as written:\n%s", msgs[0].Data)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

var queuedAs = regexp.MustCompile(`OK queued as (\S+)$`)

// submitOne sends raw over STARTTLS as tenant acme and returns the id the
// 250 reply carries.
func submitOne(t *testing.T, addr, caFile, token string, rcpts []string, raw string) string {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	must(t, err)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	must(t, err)
	c, err := smtp.NewClientStartTLS(conn, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	must(t, err)
	defer c.Close()
	must(t, c.Auth(sasl.NewPlainClient("", "acme", token)))
	must(t, c.Mail("acme@gmail.test", &smtp.MailOptions{Body: smtp.Body8BitMIME}))
	for _, r := range rcpts {
		must(t, c.Rcpt(r, nil))
	}
	w, err := c.Data()
	must(t, err)
	_, err = w.Write([]byte(raw))
	must(t, err)
	res, err := w.CloseWithResponse()
	must(t, err)
	m := queuedAs.FindStringSubmatch(res.StatusText)
	if m == nil {
		t.Fatalf("250 reply %q carries no id", res.StatusText)
	}
	return m[1]
}
