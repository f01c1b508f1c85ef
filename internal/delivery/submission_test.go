package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/logtest"
	"github.com/outbound-mail/outbound/internal/outage"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/validation"
)

// signedRaw is a message as an app's mailer writes it for the tenant's
// account: folded and signed fields, an 8-bit body, a blind recipient in
// a Bcc field, a line that SMTP dot-stuffs; no Message-ID and no Date.
const signedRaw = "From: Acme Billing <billing@acme.example>\r\n" +
	"To: Bob <bob@example.com>\r\n" +
	"Bcc: hidden@example.com\r\n" +
	"Subject: =?utf-8?q?Rechnung_f=C3=BCr_Dezember?=\r\n" +
	"DKIM-Signature: v=1; a=rsa-sha256; d=acme.example; s=s1;\r\n" +
	"\th=from:to:subject; bh=AAAA; b=BBBB\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n" +
	"\r\n" +
	"Grüße, Bob.\r\n" +
	".leading dot line\r\n"

func submit(t *testing.T, svc *Service, raw string, rcpts ...string) Accepted {
	t.Helper()
	a, err := svc.AcceptSubmission(context.Background(), Submission{TenantID: "acme", Recipients: rcpts, Raw: []byte(raw)})
	if err != nil {
		t.Fatalf("accept submission: %v", err)
	}
	return a
}

func waitRecord(t *testing.T, svc *Service, id string, want queue.Status) queue.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := svc.Status(context.Background(), id)
		if err == nil && rec.Status == want {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: status %q (err %v), want %q; error %q", id, rec.Status, err, want, rec.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var dateField = regexp.MustCompile(`\r\nDate: ([^\r]*)\r\n`)

// A submission goes out on the tenant's account as the client wrote it,
// byte for byte, but for its Bcc field, which is gone (the blind
// recipient is in the envelope only), and the Message-ID and Date it
// lacked, added after its last field; it goes with BODY=8BITMIME. Its
// record, recipients and event are those of any message, and Python's
// email package reads what arrived.
func TestSubmissionIsSentAsWritten(t *testing.T) {
	r := newRig(t, smtptest.Hooks{})
	svc := providerRig(t, r, tenant.Input{})
	svc.Start()
	a := submit(t, svc, signedRaw, "bob@example.com", "hidden@example.com", "BOB@example.com")
	if a.Route != RouteTenant || a.Replayed || a.Status != queue.StatusQueued {
		t.Errorf("accepted %+v", a)
	}
	rec := waitRecord(t, svc, a.ID, queue.StatusSent)
	got := r.smtp.WaitMessages(t, 1, 5*time.Second)[0]

	if !strings.HasSuffix(rec.MessageID, "@acme.example>") {
		t.Errorf("Message-ID %q, want one on the sender's domain", rec.MessageID)
	}
	date := dateField.FindSubmatch(got.Data)
	if date == nil {
		t.Fatalf("no Date field arrived:\n%s", got.Data)
	}
	if at, err := mail.ParseDate(string(date[1])); err != nil || time.Since(at) > time.Minute {
		t.Errorf("Date %q (%v), want now", date[1], err)
	}
	want := strings.Replace(strings.Replace(signedRaw, "Bcc: hidden@example.com\r\n", "", 1),
		"\r\n\r\n", "\r\nMessage-ID: "+rec.MessageID+"\r\nDate: "+string(date[1])+"\r\n\r\n", 1)
	if string(got.Data) != want {
		t.Errorf("received\n%q\nwant\n%q", got.Data, want)
	}
	if got.From != "billing@acme.example" || strings.Join(got.To, ",") != "bob@example.com,hidden@example.com" || got.Body != "8BITMIME" {
		t.Errorf("envelope from %s to %v, body %q", got.From, got.To, got.Body)
	}
	if len(rec.Recipients) != 2 || rec.Recipients[1].Email != "hidden@example.com" || rec.Recipients[1].Status != queue.RecipientSent {
		t.Errorf("record's recipients %+v", rec.Recipients)
	}
	q := svc.queue.(*queue.Queue)
	sentEvent, _ := queue.StatusSent.Event()
	events, err := q.ReadEvents(context.Background(), 0, "test", 10, -1)
	if err != nil || len(events) != 1 || events[0].MessageID != a.ID || events[0].Type != sentEvent {
		t.Errorf("events %+v %v, want the message's sent event", events, err)
	}

	py := pythonReads(t, got.Data)
	if py.From != "billing@acme.example" || py.Subject != "Rechnung für Dezember" || strings.ReplaceAll(py.Content, "\r\n", "\n") != "Grüße, Bob.\n.leading dot line\n" ||
		py.Bcc || py.MessageID != rec.MessageID || len(py.Defects) > 0 {
		t.Errorf("Python read %#v", py)
	}
}

// A submission that has its Message-ID and Date keeps them and arrives
// exactly as written.
func TestSubmissionKeepsItsMessageIDAndDate(t *testing.T) {
	r := newRig(t, smtptest.Hooks{})
	svc := providerRig(t, r, tenant.Input{})
	svc.Start()
	raw := "From: billing@acme.example\r\nMessage-ID: <own-1@acme.example>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0100\r\n" +
		"Subject: kept\r\n\r\nplain\r\n"
	a := submit(t, svc, raw, "bob@example.com")
	rec := waitRecord(t, svc, a.ID, queue.StatusSent)
	if got := r.smtp.WaitMessages(t, 1, 5*time.Second)[0]; string(got.Data) != raw || got.Body == "" {
		t.Errorf("received %q (body %q), want it as written", got.Data, got.Body)
	}
	if rec.MessageID != "<own-1@acme.example>" {
		t.Errorf("record's Message-ID %q", rec.MessageID)
	}
}

// On the default relay the platform's address replaces the From field,
// with the client's display name, and the client's address becomes the
// Reply-To, as for a JSON request; every other byte stays. A Reply-To of
// the client's own is kept.
func TestSubmissionOnTheRelaySendsAsThePlatform(t *testing.T) {
	r := newRig(t, smtptest.Hooks{})
	svc, _ := r.service(t, "relay", time.Minute)
	svc.Start()
	raw := "From: Acme Billing <billing@acme.example>\r\nSubject: hi\r\nX-Mailer: app\r\n\r\nhello\r\n"
	submit(t, svc, raw, "bob@example.com")
	withReplyTo := "From: billing@acme.example\r\nReply-To: Desk <desk@acme.example>\r\nSubject: two\r\n\r\nhello\r\n"
	submit(t, svc, withReplyTo, "bob@example.com")
	msgs := r.smtp.WaitMessages(t, 2, 10*time.Second)
	if received(r.smtp, "two") == 1 && bytes.Contains(msgs[0].Data, []byte("Subject: two\r\n")) {
		msgs[0], msgs[1] = msgs[1], msgs[0] // two workers: in either order
	}
	for i, m := range msgs {
		py := pythonReads(t, m.Data)
		wantReply := "billing@acme.example"
		if i == 1 {
			wantReply = "desk@acme.example"
		}
		if py.From != "no-reply@platform.example" || py.ReplyTo != wantReply || m.From != "no-reply@platform.example" {
			t.Errorf("message %d: From %q, Reply-To %q, envelope %q", i, py.From, py.ReplyTo, m.From)
		}
	}
	if py := pythonReads(t, msgs[0].Data); py.FromName != "Acme Billing" {
		t.Errorf("From's display name %q", py.FromName)
	}
	body := string(msgs[0].Data)
	if !strings.Contains(body, "\r\nSubject: hi\r\nX-Mailer: app\r\n") || !strings.HasSuffix(body, "\r\n\r\nhello\r\n") {
		t.Errorf("the rest changed:\n%q", body)
	}
}

// The same Message-ID to the same recipients again is a replay: the first
// id, one delivery. With other bytes it is refused; to other recipients
// (a client splitting a long list) it is a message of its own.
func TestSubmissionReplayByMessageID(t *testing.T) {
	r := newRig(t, smtptest.Hooks{})
	svc, _ := r.service(t, "replay", time.Minute)
	raw := "From: billing@acme.example\r\nMessage-ID: <again@acme.example>\r\nSubject: once\r\n\r\nhello\r\n"
	first := submit(t, svc, raw, "bob@example.com", "carol@example.com")
	again := submit(t, svc, raw, "Carol@example.com", "bob@example.com")
	if !again.Replayed || again.ID != first.ID {
		t.Errorf("resubmitted: %+v, want a replay of %s", again, first.ID)
	}
	_, err := svc.AcceptSubmission(context.Background(), Submission{TenantID: "acme", Recipients: []string{"bob@example.com", "carol@example.com"},
		Raw: []byte(strings.Replace(raw, "hello", "changed", 1))})
	if !errors.Is(err, queue.ErrIdempotencyKeyReused) {
		t.Errorf("same Message-ID, other body: %v, want ErrIdempotencyKeyReused", err)
	}
	split := submit(t, svc, raw, "dave@example.com")
	if split.Replayed || split.ID == first.ID {
		t.Errorf("same Message-ID to other recipients: %+v, want a new message", split)
	}
	svc.Start()
	r.smtp.WaitMessages(t, 2, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := received(r.smtp, "once"); n != 2 {
		t.Errorf("%d deliveries, want 2 (the first and the split)", n)
	}
}

// Each refusal is the error the SMTP door branches on.
func TestSubmissionRefusals(t *testing.T) {
	r := newRig(t, smtptest.Hooks{})
	relay, _ := r.service(t, "refusals", time.Minute)
	own := providerRig(t, newRig(t, smtptest.Hooks{}), tenant.Input{Provider: "google"})
	ok := "From: billing@acme.example\r\nSubject: s\r\n\r\nbody\r\n"
	many := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("r%d@example.com", i))
		}
		return out
	}
	field := func(name, code string) func(error) bool {
		return func(err error) bool {
			var verr *validation.Error
			return errors.As(err, &verr) && len(verr.Fields) == 1 && verr.Fields[0].Field == name && verr.Fields[0].Code == code
		}
	}
	cases := []struct {
		name  string
		svc   *Service
		raw   string
		rcpts []string
		is    func(error) bool
	}{
		{"no From", relay, "Subject: s\r\n\r\nbody\r\n", []string{"b@example.com"}, field("header.From", "required")},
		{"bare LF", relay, "From: billing@acme.example\nSubject: s\r\n\r\nbody\r\n", []string{"b@example.com"}, field("header", "invalid_characters")},
		{"bad RCPT", relay, ok, []string{"not an address"}, field("recipients[0]", "invalid_email")},
		{"envelope over the limit", relay, ok, many(101), field("recipients", "too_many_recipients")},
		{"over the size", relay, ok + strings.Repeat("x\r\n", 400_000), []string{"b@example.com"}, field("message", "too_large")},
		{"over the provider's", own, ok, many(101), field("recipients", codeExceedsProviderLimit)},
		{"From not the account's", own, strings.Replace(ok, "billing@", "other@", 1), []string{"b@example.com"},
			func(err error) bool {
				var fm *FromMismatchError
				return errors.As(err, &fm) && fm.Account == "billing@acme.example"
			}},
	}
	own.cfg.Limits.MaxRecipients = 1000
	relay.cfg.Limits.MaxMessageBytes = 1 << 20
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.svc.AcceptSubmission(context.Background(), Submission{TenantID: "acme", Recipients: c.rcpts, Raw: []byte(c.raw)})
			if !c.is(err) {
				t.Errorf("err %v (%T)", err, err)
			}
		})
	}

	ctx := context.Background()
	relay.limits.RatePerMinute = 3
	if _, err := relay.AcceptSubmission(ctx, Submission{TenantID: "acme", Recipients: many(4), Raw: []byte(ok)}); !field("recipients", "exceeds_rate_limit")(err) {
		t.Errorf("more recipients than the rate: %v", err)
	}
	submit(t, relay, ok, many(2)...)
	var denied *ratelimit.DeniedError
	if _, err := relay.AcceptSubmission(ctx, Submission{TenantID: "acme", Recipients: many(2), Raw: []byte(ok)}); !errors.As(err, &denied) {
		t.Errorf("over the rate: %v, want a *ratelimit.DeniedError", err)
	}
	relay.limits.RatePerMinute = 1000

	store := relay.profiles.(*tenant.Store)
	if _, err := store.SetStatus(ctx, "acme", tenant.Status{Sending: tenant.SendingPaused, Reason: "audit"}); err != nil {
		t.Fatal(err)
	}
	var paused *tenant.PausedError
	if _, err := relay.AcceptSubmission(ctx, Submission{TenantID: "acme", Recipients: many(1), Raw: []byte(ok)}); !errors.As(err, &paused) || paused.Reason != "audit" {
		t.Errorf("paused tenant: %v", err)
	}
	if _, err := store.SetStatus(ctx, "acme", tenant.Status{Sending: tenant.SendingActive}); err != nil {
		t.Fatal(err)
	}

	relay.cfg.Relay = nil
	if _, err := relay.AcceptSubmission(ctx, Submission{TenantID: "acme", Recipients: many(1), Raw: []byte(ok)}); !errors.Is(err, ErrNoRoute) {
		t.Errorf("no route: %v", err)
	}
	r.redis.Stop(t)
	if _, err := relay.AcceptSubmission(ctx, Submission{TenantID: "acme", Recipients: many(1), Raw: []byte(ok)}); !errors.Is(err, outage.ErrUnavailable) {
		t.Errorf("Redis down: %v, want outage.ErrUnavailable", err)
	}
}

// An 8-bit message is not sent to a server without 8BITMIME, which could
// only take it altered: it fails at once, with an error that says why.
func TestSubmissionNeeds8BitMIME(t *testing.T) {
	r := &rig{redis: redistest.Start(t), logs: &logtest.Buffer{},
		smtp: smtptest.Start(t, smtptest.Options{AcceptAnyAuth: true, Without: []string{"8BITMIME"}})}
	svc, _ := r.service(t, "old-server", time.Minute)
	svc.Start()
	a := submit(t, svc, "From: billing@acme.example\r\nSubject: s\r\n\r\nGrüße\r\n", "bob@example.com")
	rec := waitRecord(t, svc, a.ID, queue.StatusFailed)
	if !strings.Contains(rec.Error, "protocol_error") || !strings.Contains(rec.Error, "8BITMIME") {
		t.Errorf("error %q, want a protocol_error naming 8BITMIME", rec.Error)
	}
	if n := len(r.smtp.Messages()); n != 0 {
		t.Errorf("the server received %d messages", n)
	}
}

// A submission with UTF-8 in its header (RFC 6532) goes with SMTPUTF8,
// to a UTF-8 address too, as written.
func TestSubmissionWithUTF8HeaderSaysSMTPUTF8(t *testing.T) {
	r := newRig(t, smtptest.Hooks{})
	svc, _ := r.service(t, "utf8", time.Minute)
	svc.Start()
	raw := "From: Jörg <billing@acme.example>\r\nTo: jörg@bücher.example\r\nMessage-ID: <u@acme.example>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0100\r\n" +
		"Subject: Grüße\r\n\r\nhello\r\n"
	submit(t, svc, raw, "jörg@bücher.example")
	got := r.smtp.WaitMessages(t, 1, 5*time.Second)[0]
	if !got.UTF8 || strings.Join(got.To, ",") != "jörg@bücher.example" {
		t.Errorf("SMTPUTF8 %v, to %v", got.UTF8, got.To)
	}
	want := strings.Replace(raw, "From: Jörg <billing@acme.example>", `From: =?utf-8?q?J=C3=B6rg?= <no-reply@platform.example>`, 1)
	want = strings.Replace(want, "\r\n\r\n", "\r\nReply-To: =?utf-8?q?J=C3=B6rg?= <billing@acme.example>\r\n\r\n", 1)
	if string(got.Data) != want {
		t.Errorf("received\n%q\nwant\n%q", got.Data, want)
	}
	if py := pythonReads(t, got.Data); py.Subject != "Grüße" || py.FromName != "Jörg" || len(py.Defects) > 0 {
		t.Errorf("Python read %#v", py)
	}
}

// pyRead is what Python's email package (policy.default) reads of a
// message.
type pyRead struct {
	From      string   `json:"from"`
	FromName  string   `json:"from_name"`
	ReplyTo   string   `json:"reply_to"`
	Subject   string   `json:"subject"`
	MessageID string   `json:"message_id"`
	Bcc       bool     `json:"bcc"`
	Content   string   `json:"content"`
	Defects   []string `json:"defects"`
}

const pyReader = `
import email, json, sys
from email import policy
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
frm = msg["From"].addresses[0]
rt = msg["Reply-To"]
json.dump({"from": frm.addr_spec, "from_name": frm.display_name,
           "reply_to": rt.addresses[0].addr_spec if rt else "",
           "subject": str(msg["Subject"]), "message_id": str(msg["Message-ID"]),
           "bcc": msg["Bcc"] is not None, "content": msg.get_content(),
           "defects": [type(d).__name__ for d in msg.defects]}, sys.stdout)
`

// pythonReads reads raw with Python's email package, a reader no one here
// wrote.
func pythonReads(t *testing.T, raw []byte) pyRead {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 reads what arrived as a stranger would; install it (apt-get install -y python3): %v", err)
	}
	cmd := exec.Command(py, "-c", pyReader)
	cmd.Stdin = bytes.NewReader(raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var got pyRead
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	return got
}
