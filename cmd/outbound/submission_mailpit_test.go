package main

import (
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/pyrun"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// pySubmitScript sends one message with Python's smtplib over STARTTLS:
// argv is host, port, CA file, user, password, envelope sender, the
// message file, then the recipients. It prints the reply to the final
// dot, which sendmail() would throw away.
const pySubmitScript = `
import json, smtplib, ssl, sys
host, port, cafile, user, password, sender, path = sys.argv[1:8]
s = smtplib.SMTP(host, int(port), timeout=20)
s.starttls(context=ssl.create_default_context(cafile=cafile))
s.login(user, password)
s.mail(sender)
for r in sys.argv[8:]:
    code, text = s.rcpt(r)
    if code != 250:
        raise SystemExit("RCPT %s: %d %s" % (r, code, text))
with open(path, "rb") as f:
    code, text = s.data(f.read())
s.quit()
json.dump({"code": code, "text": text.decode()}, sys.stdout)
`

// TestSubmissionThroughMailpit submits a message with Python's smtplib
// to `outbound serve`'s submission listener as tenant acme, whose account
// is a Mailpit, and reads what Mailpit stored through its API and with
// Python's email package. (Mailpit writes a Bcc field of its own from the
// envelope, so "no Bcc is sent on" is checked on a go-smtp server's raw
// DATA in systemtest, not here.)
func TestSubmissionThroughMailpit(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3 not found in PATH; install it (Debian: apt-get install python3): %v", err)
	}
	ca := smtptest.NewCA(t)
	certFile, keyFile, caFile := tlsFiles(t, ca)
	box := startMailpit(t, "tls", certFile, keyFile, map[string]string{"acme@gmail.test": "abcdefghijklmnop"})
	redis := redistest.Start(t)
	env, admin, send, submitPort := submissionEnv(t, redis.URL(), certFile, keyFile, caFile)
	svc := startService(t, env, admin, send)
	if status, body := svc.call(t, "PUT", "/v1/tenants/acme/smtp", admin, map[string]any{
		"sender_name": "Acme Trading", "email": "acme@gmail.test", "password": "abcdefghijklmnop",
		"host": "localhost", "port": box.smtpPort, "security": "tls"}); status != http.StatusCreated {
		t.Fatalf("PUT profile: %d %v", status, body)
	}

	subject := "Invoice 42, by smtplib"
	text := "Your invoice is attached in spirit.\r\n..a line that starts with a dot\r\nGrüße, Acme\r\n"
	raw := "From: Acme Billing <acme@gmail.test>\r\nTo: Client <client@example.com>\r\nBcc: archive@example.com\r\n" +
		"Subject: " + subject + "\r\nMessage-ID: <smtplib-1@acme.test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text
	sentFile := pyrun.Files(t, []byte(raw))[0]
	var res struct {
		Code int
		Text string
	}
	pyrun.JSON(t, "python3 smtplib", pySubmitScript, nil, &res, "127.0.0.1", strconv.Itoa(submitPort), caFile, "acme", send,
		"acme@gmail.test", sentFile, "client@example.com", "archive@example.com")
	m := queuedAs.FindStringSubmatch(res.Text)
	if res.Code != 250 || m == nil {
		t.Fatalf("reply to the message: %d %q, want 250 with the id", res.Code, res.Text)
	}
	svc.waitStatus(t, m[1], "sent", 15*time.Second)

	got := onlyMessage(t, box)
	if got.From != (mailpitAddr{"Acme Billing", "acme@gmail.test"}) || len(got.To) != 1 ||
		got.To[0] != (mailpitAddr{"Client", "client@example.com"}) || got.Subject != subject {
		t.Errorf("Mailpit reads From %+v To %+v Subject %q", got.From, got.To, got.Subject)
	}
	if len(got.Bcc) != 1 || got.Bcc[0].Address != "archive@example.com" {
		t.Errorf("Mailpit's envelope-made Bcc is %+v: the blind recipient was not delivered to", got.Bcc)
	}
	if want := strings.ReplaceAll(text, "\r\n", "\n"); strings.ReplaceAll(got.Text, "\r\n", "\n") != want {
		t.Errorf("Mailpit reads the text %q, sent %q", got.Text, want)
	}

	stored := mailpitRaw(t, box)
	if !strings.HasSuffix(string(stored), "\r\n\r\n"+text) {
		t.Errorf("the body was not sent as written:\n%s", stored)
	}
	readings := pythonRead(t, pyrun.Files(t, stored, []byte(raw)))
	read, sent := readings[0].Modern, readings[1].Modern
	if read.Subject != sent.Subject || read.MessageID != "<smtplib-1@acme.test>" || deref(read.Text) != deref(sent.Text) ||
		len(read.From) != 1 || read.From[0] != sent.From[0] || len(read.To) != 1 || read.To[0] != sent.To[0] {
		t.Errorf("Python reads what Mailpit stored as %+v, what was sent as %+v", read, sent)
	}
}

// mailpitRaw is the one message Mailpit holds, as it stored it.
func mailpitRaw(t *testing.T, box mailpit) []byte {
	t.Helper()
	var list struct{ Messages []struct{ ID string } }
	box.get(t, "/api/v1/messages", &list)
	if len(list.Messages) != 1 {
		t.Fatalf("Mailpit holds %d messages, want 1", len(list.Messages))
	}
	res, err := http.Get(box.api + "/api/v1/message/" + list.Messages[0].ID + "/raw")
	must(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	must(t, err)
	if res.StatusCode != 200 {
		t.Fatalf("mailpit raw: %d %s", res.StatusCode, b)
	}
	return b
}
