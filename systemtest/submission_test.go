package systemtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// submitSetup is a sendSetup with the SMTP submission listeners on, their
// certificate from a CA whose PEM is at caFile (what a client is given).
type submitSetup struct {
	sendSetup
	caFile string
}

func newSubmitSetup(t *testing.T, accountOpts smtptest.Options, tweaks ...func(*options)) submitSetup {
	t.Helper()
	ca := smtptest.NewCA(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSendSetup(t, accountOpts, append(tweaks, func(o *options) { o.submission = ca })...)
	if s.submissionAddr == "" || s.submissionsAddr == "" {
		t.Fatal("the harness started no submission listener")
	}
	s.putProfile(t, nil)
	return submitSetup{sendSetup: s, caFile: caFile}
}

// job is a Python client job for tenant acme with its bound token over
// the given TLS mode.
func (s submitSetup) job(t *testing.T, mode string, msgs ...pyMessage) pyJob {
	t.Helper()
	addr := s.submissionAddr
	if mode == "implicit" {
		addr = s.submissionsAddr
	}
	return pyJob{Host: "127.0.0.1", Port: portOf(t, addr), TLS: mode, CAFile: s.caFile,
		User: "acme", Password: s.acmeToken, Messages: msgs}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("address %q has no port", addr)
	}
	return atoi(t, port)
}

var queuedAs = regexp.MustCompile(`^2\.0\.0 OK queued as (\S+)$`)

// queuedID is the message id a 250 reply to the final dot carries.
func queuedID(t *testing.T, r pyReply) string {
	t.Helper()
	m := queuedAs.FindStringSubmatch(r.Text)
	if r.Code != 250 || m == nil {
		t.Fatalf("reply to the message: %d %q, want 250 2.0.0 OK queued as <id>", r.Code, r.Text)
	}
	return m[1]
}

// crlf turns a message written with LF line ends into one with CRLF.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

// bodyOf is the part of a message after its header.
func bodyOf(t *testing.T, raw []byte) []byte {
	t.Helper()
	_, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("message has no header end: %q", raw)
	}
	return body
}

// receivedFor waits for the account server to have a message whose
// Subject is subject, and returns it.
func (s submitSetup) receivedFor(t *testing.T, subject string) smtptest.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range s.account.Messages() {
			if bytes.Contains(m.Data, []byte("\r\nSubject: "+subject+"\r\n")) {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the account server never received %q", subject)
	return smtptest.Message{}
}

// checkArrived holds what the account server received of a submitted
// message to what was sent, as Python's email package reads it: From, To
// and Subject as written, no Bcc, the body octet for octet, every
// envelope recipient, a Message-ID (the client's when it gave one) and a
// Date.
func (s submitSetup) checkArrived(t *testing.T, id, subject string, sent pyMessage, wantMessageID string) pyRead {
	t.Helper()
	s.waitStatus(t, id, "sent")
	got := s.receivedFor(t, subject)
	if !slices.Equal(sorted(got.To), sorted(sent.Rcpts)) {
		t.Errorf("envelope recipients %v, want %v", got.To, sent.Rcpts)
	}
	read := pythonRead(t, []smtptest.Message{got})[0]
	want := pythonRead(t, []smtptest.Message{{Data: sent.Data}})[0]
	if read.From != want.From || read.To != want.To || read.Subject != want.Subject {
		t.Errorf("Python reads From %q To %q Subject %q, sent %q %q %q", read.From, read.To, read.Subject, want.From, want.To, want.Subject)
	}
	if read.HasBcc {
		t.Errorf("the Bcc field was sent on:\n%s", got.Data)
	}
	if !bytes.Equal(read.Body, bodyOf(t, sent.Data)) || !bytes.Equal(bodyOf(t, got.Data), bodyOf(t, sent.Data)) {
		t.Errorf("body changed:\n got %q\nwant %q", bodyOf(t, got.Data), bodyOf(t, sent.Data))
	}
	if !read.HasDate {
		t.Error("no Date field: one is added where the message has none")
	}
	if wantMessageID != "" && read.MessageID != wantMessageID {
		t.Errorf("Message-ID %q, want the client's %q", read.MessageID, wantMessageID)
	}
	if !strings.HasPrefix(read.MessageID, "<") {
		t.Errorf("Message-ID %q: one is added where the message has none", read.MessageID)
	}
	return read
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// invoiceMail is a plain-text message from acme's account address with a
// Bcc, and messageID ("" for none).
func invoiceMail(subject, messageID string) pyMessage {
	head := "From: Acme Billing <acme@gmail.com>\nTo: Client <client@example.com>\nBcc: archive@example.com\n" +
		"Subject: " + subject + "\n"
	if messageID != "" {
		head += "Message-ID: " + messageID + "\n"
	}
	head += "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
	body := "Invoice 42 is attached in spirit.\n..a line that starts with a dot\n\n  indented, and trailing spaces   \nlast line\n"
	return pyMessage{From: "acme@gmail.com", Rcpts: []string{"client@example.com", "archive@example.com"},
		Data: crlf(head + body)}
}

// TestSubmitWithPythonSmtplib submits over STARTTLS (587's way) and
// implicit TLS (465's) with Python's smtplib and follows the message to
// the tenant's account server.
func TestSubmitWithPythonSmtplib(t *testing.T) {
	s := newSubmitSetup(t, smtptest.Options{})
	for _, tc := range []struct{ mode, messageID string }{
		{"starttls", "<invoice-42-starttls@acme.example>"},
		{"implicit", ""}, // the service adds one
	} {
		t.Run(tc.mode, func(t *testing.T) {
			subject := "Invoice 42 over " + tc.mode
			msg := invoiceMail(subject, tc.messageID)
			res := pythonSubmit(t, s.job(t, tc.mode, msg))
			if !res.AuthOffered || res.Login.Code != 235 {
				t.Fatalf("login: offered %v, %d %q", res.AuthOffered, res.Login.Code, res.Login.Text)
			}
			id := queuedID(t, res.Sent[0])
			s.checkArrived(t, id, subject, msg, tc.messageID)
		})
	}
}

// TestSubmitWithCurl submits with curl's SMTP client, as the README shows.
func TestSubmitWithCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl not found in PATH; install it (Debian: apt-get install curl): %v", err)
	}
	s := newSubmitSetup(t, smtptest.Options{})
	for _, tc := range []struct{ scheme, addr string }{{"smtp", s.submissionAddr}, {"smtps", s.submissionsAddr}} {
		t.Run(tc.scheme, func(t *testing.T) {
			subject := "Invoice 42 by curl " + tc.scheme
			msg := invoiceMail(subject, "<curl-"+tc.scheme+"@acme.example>")
			file := filepath.Join(t.TempDir(), "mail.eml")
			if err := os.WriteFile(file, msg.Data, 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"-sS", "-v", "--ssl-reqd", tc.scheme + "://" + tc.addr, "--user", "acme:" + s.acmeToken,
				"--mail-from", msg.From, "--upload-file", file, "--cacert", s.caFile}
			for _, r := range msg.Rcpts {
				args = append(args, "--mail-rcpt", r)
			}
			out, err := exec.Command("curl", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			m := regexp.MustCompile(`(?m)^< 250 2\.0\.0 OK queued as (\S+)\r?$`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("curl saw no 250 with the id:\n%s", out)
			}
			s.checkArrived(t, string(m[1]), subject, msg, "<curl-"+tc.scheme+"@acme.example>")
		})
	}
}

// TestSubmitUTF8 sends an 8-bit UTF-8 body and an internationalized
// address (SMTPUTF8, RFC 6531) to an account server that offers both.
func TestSubmitUTF8(t *testing.T) {
	s := newSubmitSetup(t, smtptest.Options{})
	subject := "Rechnung für Jürgen"
	msg := pyMessage{From: "acme@gmail.com", Rcpts: []string{"jürgen@bücher.example"},
		Options: []string{"SMTPUTF8", "BODY=8BITMIME"},
		Data: crlf("From: Acme <acme@gmail.com>\nTo: Jürgen <jürgen@bücher.example>\nSubject: " + subject + "\n" +
			"Message-ID: <utf8-1@acme.example>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n" +
			"Content-Transfer-Encoding: 8bit\n\nGrüße aus Köln — 请查收发票 — فاتورة\n")}
	res := pythonSubmit(t, s.job(t, "starttls", msg))
	id := queuedID(t, res.Sent[0])
	s.checkArrived(t, id, subject, msg, "<utf8-1@acme.example>")
	got := s.receivedFor(t, subject)
	if !got.UTF8 || got.Body != "8BITMIME" {
		t.Errorf("MAIL FROM said SMTPUTF8 %v, BODY=%q; want SMTPUTF8 and 8BITMIME for this message", got.UTF8, got.Body)
	}
}

// TestSubmitReplayAfterCutConnection plays a client whose connection
// broke after it sent the final dot, before it read the reply or sent
// QUIT: it sends the same message again on a new connection. The second
// answer is the first id and the message is delivered once.
func TestSubmitReplayAfterCutConnection(t *testing.T) {
	s := newSubmitSetup(t, smtptest.Options{})
	subject := "Replayed invoice"
	msg := invoiceMail(subject, "<replay-1@acme.example>")
	first := s.job(t, "starttls", msg)
	first.Cut = true
	id := queuedID(t, pythonSubmit(t, first).Sent[0])
	again := queuedID(t, pythonSubmit(t, s.job(t, "implicit", msg)).Sent[0])
	if again != id {
		t.Fatalf("the resubmission was answered %s, the first %s: a replay answers the first id", again, id)
	}
	s.checkArrived(t, id, subject, msg, "<replay-1@acme.example>")
	time.Sleep(500 * time.Millisecond) // room for a second delivery, were one queued
	n := 0
	for _, m := range s.account.Messages() {
		if bytes.Contains(m.Data, []byte("<replay-1@acme.example>")) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the account server received the message %d times, want once", n)
	}
}

// TestSubmitRefusals checks the replies a client sees when the service
// will not take a message or a login.
func TestSubmitRefusals(t *testing.T) {
	s := newSubmitSetup(t, smtptest.Options{})

	t.Run("tenant-bound token for another tenant", func(t *testing.T) {
		job := s.job(t, "starttls")
		job.User = "globex" // the token is send@acme
		if res := pythonSubmit(t, job); res.Login.Code != 535 || !strings.HasPrefix(res.Login.Text, "5.7.8") {
			t.Errorf("login: %d %q, want 535 5.7.8", res.Login.Code, res.Login.Text)
		}
	})
	t.Run("AUTH before STARTTLS", func(t *testing.T) {
		res := pythonSubmit(t, s.job(t, "none"))
		if res.AuthOffered {
			t.Error("AUTH is offered before STARTTLS")
		}
		if res.Login.Code != 538 || !strings.HasPrefix(res.Login.Text, "5.7.11") {
			t.Errorf("AUTH PLAIN in clear: %d %q, want 538 5.7.11", res.Login.Code, res.Login.Text)
		}
	})
	t.Run("over size", func(t *testing.T) {
		msg := invoiceMail("Too big", "<big@acme.example>")
		line := strings.Repeat("x", 900) + "\r\n"
		msg.Data = append(msg.Data, strings.Repeat(line, (1<<20)/len(line)+10)...) // past the harness's 1 MiB
		res := pythonSubmit(t, s.job(t, "starttls", msg))
		if r := res.Sent[0]; r.Code != 552 || !strings.HasPrefix(r.Text, "5.3.4") {
			t.Errorf("over-size message: %d %q, want 552 5.3.4", r.Code, r.Text)
		}
	})
	t.Run("paused tenant", func(t *testing.T) {
		if r := s.do("PUT", "/v1/tenants/acme/status", s.adminToken, map[string]string{"sending": "paused", "reason": "billing overdue"}); r.status != 200 {
			t.Fatalf("pause: %d %s", r.status, r.body)
		}
		defer s.do("PUT", "/v1/tenants/acme/status", s.adminToken, map[string]string{"sending": "active"})
		res := pythonSubmit(t, s.job(t, "starttls", invoiceMail("While paused", "<paused@acme.example>")))
		if r := res.Sent[0]; r.Code != 451 || !strings.HasPrefix(r.Text, "4.7.0") || !strings.Contains(r.Text, "billing overdue") {
			t.Errorf("paused tenant: %d %q, want 451 4.7.0 with the reason", r.Code, r.Text)
		}
	})
}

// TestSubmitRateLimited sends past the tenant's rate in one session: the
// message over it gets 451 4.7.0 saying when to retry, the ones before it
// 250.
func TestSubmitRateLimited(t *testing.T) {
	s := newSubmitSetup(t, smtptest.Options{}, func(o *options) { o.rateLimit = ratelimit.Limit{PerMinute: 2, PerDay: 100} })
	var msgs []pyMessage
	for i := range 3 {
		m := invoiceMail("Rate "+itoa(i), "<rate-"+itoa(i)+"@acme.example>")
		m.Rcpts = []string{"client@example.com"}
		msgs = append(msgs, m)
	}
	res := pythonSubmit(t, s.job(t, "starttls", msgs...))
	queuedID(t, res.Sent[0])
	queuedID(t, res.Sent[1])
	r := res.Sent[2]
	if r.Code != 451 || !strings.HasPrefix(r.Text, "4.7.") || !regexp.MustCompile(`try again in [1-9][0-9]* seconds`).MatchString(r.Text) {
		t.Errorf("third message: %d %q, want 451 4.7.x with the seconds to wait", r.Code, r.Text)
	}
}

// TestSubmittedMailIsListedByRecipient: a message that came in by SMTP is
// found by the listing's recipient filter like one posted over HTTP, by
// each envelope recipient (blind ones too, as bcc is for HTTP).
func TestSubmittedMailIsListedByRecipient(t *testing.T) {
	s := newSubmitSetup(t, smtptest.Options{})
	msg := invoiceMail("Invoice 42, listed", "<listed@acme.example>")
	id := queuedID(t, pythonSubmit(t, s.job(t, "starttls", msg)).Sent[0])
	for _, rcpt := range msg.Rcpts {
		r := s.do("GET", "/v1/messages?tenant_id=acme&to="+rcpt, s.adminToken, nil)
		if r.status != 200 {
			t.Fatalf("list to=%s: %d %s", rcpt, r.status, r.body)
		}
		messages, _ := r.json(t)["messages"].([]any)
		if len(messages) != 1 || messages[0].(map[string]any)["id"] != id {
			t.Errorf("list to=%s: %s, want only %s", rcpt, r.body, id)
		}
	}
}
