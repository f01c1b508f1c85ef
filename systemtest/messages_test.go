package systemtest

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
)

const tenantPass = "abcdefghijklmnop"

// sendSetup is a harness with workers, one SMTP server playing the
// tenant's own account and one the platform's relay, both trusted through
// one test CA.
type sendSetup struct {
	*harness
	account *smtptest.Server
	relay   *smtptest.Server
	leaf    *tls.Certificate // the servers' certificate, which the service trusts
}

func newSendSetup(t *testing.T, accountOpts smtptest.Options, tweaks ...func(*options)) sendSetup {
	t.Helper()
	ca := smtptest.NewCA(t)
	leaf := ca.Leaf(t, smtptest.LeafOptions{})
	if accountOpts.Users == nil {
		accountOpts.Users = map[string]string{"acme@gmail.com": tenantPass}
	}
	accountOpts.TLS = &leaf
	account := smtptest.Start(t, accountOpts)
	relay := smtptest.Start(t, smtptest.Options{Users: map[string]string{"relay": "relay-pass"}, Mode: smtptest.STARTTLS, TLS: &leaf})
	o := options{workers: 4, roots: ca.Pool(), allowPrivate: true,
		relay: &transport.Server{Host: "127.0.0.1", Port: relay.Port(), Security: tenant.SecurityStartTLS,
			Auth: tenant.AuthPlain, Username: "relay", Password: secret.New("relay-pass"), Trusted: true}}
	for _, tweak := range tweaks {
		tweak(&o)
	}
	h := newHarness(t, o)
	return sendSetup{harness: h, account: account, relay: relay, leaf: &leaf}
}

func (s sendSetup) putProfile(t *testing.T, extra map[string]any) {
	t.Helper()
	in := map[string]any{"sender_name": "Acme Trading", "email": "acme@gmail.com", "password": tenantPass,
		"host": "127.0.0.1", "port": s.account.Port(), "security": "tls"}
	for k, v := range extra {
		in[k] = v
	}
	if r := s.do("PUT", "/v1/tenants/acme/smtp", s.adminToken, in); r.status != 200 && r.status != 201 {
		t.Fatalf("PUT profile: %d %s", r.status, r.body)
	}
}

func invoice() map[string]any {
	return map[string]any{
		"tenant_id": "acme",
		"from":      map[string]string{"name": "Acme Billing", "email": "acme@gmail.com"},
		"to":        []map[string]string{{"email": "client@example.com", "name": "Client"}},
		"bcc":       []map[string]string{{"email": "archive@example.com"}},
		"subject":   "فاتورة رقم 42",
		"text":      "plain body", "html": "<p>html body</p>",
		"attachments": []map[string]string{{"filename": "invoice-42.pdf", "content_type": "application/pdf",
			"content": base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 invoice"))}},
		"headers": map[string]string{"X-Invoice-Id": "42"},
		"tags":    []string{"invoice"}, "metadata": map[string]string{"invoice_id": "42"},
	}
}

func (s sendSetup) post(t *testing.T, body any, headers ...string) response {
	t.Helper()
	return s.do("POST", "/v1/messages", s.sendToken, body, headers...)
}

func (s sendSetup) accept(t *testing.T, body any) string {
	t.Helper()
	r := s.post(t, body)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	id, _ := r.json(t)["id"].(string)
	if r.header.Get("Location") != "/v1/messages/"+id {
		t.Errorf("Location = %q", r.header.Get("Location"))
	}
	return id
}

func (s sendSetup) waitStatus(t *testing.T, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last map[string]any
	for time.Now().Before(deadline) {
		last = s.do("GET", "/v1/messages/"+id, s.sendToken, nil).json(t)
		if last["status"] == want {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("message %s: status %v, want %s: %v", id, last["status"], want, last)
	return nil
}

func attempts(m map[string]any) []map[string]any {
	list, _ := m["attempts"].([]any)
	out := make([]map[string]any, len(list))
	for i, a := range list {
		out[i], _ = a.(map[string]any)
	}
	return out
}

func TestSendThroughTenantAccount(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)

	r := s.post(t, invoice())
	if r.status != http.StatusAccepted {
		t.Fatalf("%d %s", r.status, r.body)
	}
	acc := r.json(t)
	if acc["status"] != "queued" || acc["route"] != "tenant" || acc["tenant_id"] != "acme" {
		t.Fatalf("accepted = %v", acc)
	}
	done := s.waitStatus(t, acc["id"].(string), "sent")
	if a := attempts(done); len(a) != 1 || a[0]["smtp_code"] != float64(250) || done["sent_at"] == nil {
		t.Errorf("status = %v", done)
	}
	if strings.Contains(string(s.do("GET", "/v1/messages/"+acc["id"].(string), s.sendToken, nil).body), "plain body") {
		t.Error("status shows the body")
	}

	msg := s.account.WaitMessages(t, 1, 5*time.Second)[0]
	if msg.From != "acme@gmail.com" || strings.Join(msg.To, ",") != "client@example.com,archive@example.com" {
		t.Errorf("envelope: from %s to %v", msg.From, msg.To)
	}
	raw := string(msg.Data)
	if strings.Contains(strings.ToLower(raw), "\nbcc:") || strings.Contains(raw, "archive@example.com") {
		t.Fatalf("the Bcc recipient is visible in the message:\n%s", raw)
	}
	mr, err := mail.CreateReader(bytes.NewReader(msg.Data))
	if err != nil {
		t.Fatal(err)
	}
	from, _ := mr.Header.AddressList("From")
	subject, _ := mr.Header.Subject()
	if len(from) != 1 || from[0].Address != "acme@gmail.com" || from[0].Name != "Acme Billing" {
		t.Errorf("From = %v", from)
	}
	if subject != "فاتورة رقم 42" {
		t.Errorf("Subject = %q", subject)
	}
	if id := mr.Header.Get("Message-Id"); !strings.HasSuffix(id, "@gmail.com>") {
		t.Errorf("Message-ID %q not on the sender's domain", id)
	}
	if mr.Header.Get("X-Invoice-Id") != "42" {
		t.Error("custom header lost")
	}
	var attachment []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ah, ok := p.Header.(*mail.AttachmentHeader); ok {
			name, _ := ah.Filename()
			if name != "invoice-42.pdf" {
				t.Errorf("attachment name %q", name)
			}
			attachment, _ = io.ReadAll(p.Body)
		}
	}
	if string(attachment) != "%PDF-1.4 invoice" {
		t.Errorf("attachment = %q", attachment)
	}
}

func TestDefaultRouteWhenNoProfile(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	in := invoice()
	in["tenant_id"] = "beta"
	in["from"] = map[string]string{"name": "Beta Bookings", "email": "hello@beta.example"}
	delete(in, "reply_to")
	r := s.post(t, in)
	if r.status != http.StatusAccepted || r.json(t)["route"] != "default" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	s.waitStatus(t, r.json(t)["id"].(string), "sent")
	msg := s.relay.WaitMessages(t, 1, 5*time.Second)[0]
	if msg.From != "no-reply@platform.example" || msg.Username != "relay" {
		t.Errorf("envelope from %s, login %s", msg.From, msg.Username)
	}
	mr, _ := mail.CreateReader(bytes.NewReader(msg.Data))
	from, _ := mr.Header.AddressList("From")
	replyTo, _ := mr.Header.AddressList("Reply-To")
	if len(from) != 1 || from[0].Address != "no-reply@platform.example" || from[0].Name != "Beta Bookings" {
		t.Errorf("From = %v", from)
	}
	if len(replyTo) != 1 || replyTo[0].Address != "hello@beta.example" {
		t.Errorf("Reply-To = %v", replyTo)
	}
	if len(s.account.Messages()) != 0 {
		t.Error("default-route message went to the tenant account")
	}

	// A disabled profile also means the default route.
	s.putProfile(t, map[string]any{"enabled": false})
	in = invoice()
	delete(in, "from")
	if r := s.post(t, in); r.json(t)["route"] != "default" {
		t.Fatalf("disabled profile: %s", r.body)
	}
}

func TestIdempotency(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	first := s.post(t, invoice(), "Idempotency-Key", "inv-42")
	if first.status != http.StatusAccepted {
		t.Fatalf("%d %s", first.status, first.body)
	}
	id := first.json(t)["id"]

	// The same request with keys in another order and other spacing.
	raw := `{ "metadata": {"invoice_id": "42"}, "tags": ["invoice"],
	  "headers": {"X-Invoice-Id": "42"}, "html": "<p>html body</p>", "text": "plain body",
	  "subject": "فاتورة رقم 42", "bcc": [{"email": "archive@example.com"}],
	  "to": [{"name": "Client", "email": "client@example.com"}],
	  "from": {"email": "acme@gmail.com", "name": "Acme Billing"}, "tenant_id": "acme",
	  "attachments": [{"content": "` + base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 invoice")) + `",
	    "content_type": "application/pdf", "filename": "invoice-42.pdf"}] }`
	again := s.post(t, raw, "Idempotency-Key", "inv-42")
	if (again.status != http.StatusOK && again.status != http.StatusAccepted) || again.json(t)["id"] != id {
		t.Fatalf("replay: %d %s, want id %v", again.status, again.body, id)
	}
	changed := invoice()
	changed["subject"] = "Invoice 43"
	if r := s.post(t, changed, "Idempotency-Key", "inv-42"); r.status != http.StatusConflict || r.code(t) != "idempotency_key_reused" {
		t.Fatalf("different request: %d %s", r.status, r.body)
	}
	if r := s.post(t, invoice(), "Idempotency-Key", "has space"); r.status != http.StatusBadRequest {
		t.Fatalf("bad key: %d", r.status)
	}
	s.waitStatus(t, id.(string), "sent")
	time.Sleep(200 * time.Millisecond)
	if n := len(s.account.Messages()); n != 1 {
		t.Fatalf("%d messages delivered, want 1", n)
	}
}

func TestTemporaryFailureIsRetried(t *testing.T) {
	var calls atomic.Int32
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Data: func(smtptest.Message) *smtp.SMTPError {
		if calls.Add(1) == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	}}})
	s.putProfile(t, nil)
	id := s.accept(t, invoice())
	done := s.waitStatus(t, id, "sent")
	a := attempts(done)
	if len(a) != 2 || a[0]["smtp_code"] != float64(451) || a[0]["enhanced_code"] != "4.3.0" || a[0]["message"] != "try again later" ||
		a[1]["smtp_code"] != float64(250) {
		t.Fatalf("attempts = %v", a)
	}
}

func TestPermanentFailure(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Data: func(smtptest.Message) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "message refused"}
	}}})
	s.putProfile(t, nil)
	id := s.accept(t, invoice())
	done := s.waitStatus(t, id, "failed")
	if a := attempts(done); len(a) != 1 || a[0]["smtp_code"] != float64(554) || done["error"] == nil {
		t.Fatalf("status = %v", done)
	}
}

func TestSomeRecipientsRefused(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Rcpt: func(to string) *smtp.SMTPError {
		switch {
		case strings.HasPrefix(to, "gone"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case strings.HasPrefix(to, "blocked"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "relaying denied"}
		}
		return nil
	}}})
	s.putProfile(t, nil)
	in := invoice()
	in["to"] = []map[string]string{{"email": "gone@example.com"}, {"email": "client@example.com"}}
	done := s.waitStatus(t, s.accept(t, in), "sent")
	rej, _ := done["rejected_recipients"].([]any)
	if len(rej) != 1 || rej[0].(map[string]any)["email"] != "gone@example.com" {
		t.Fatalf("rejected = %v", done["rejected_recipients"])
	}
	in["to"] = []map[string]string{{"email": "blocked@example.com"}}
	delete(in, "bcc")
	done = s.waitStatus(t, s.accept(t, in), "failed")
	if rej, _ := done["rejected_recipients"].([]any); len(rej) != 1 {
		t.Fatalf("all refused: %v", done)
	}
}

func TestConnectionReuseAndProfileChange(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	for range 2 {
		s.waitStatus(t, s.accept(t, invoice()), "sent")
	}
	if s.account.Connections() != 1 || s.account.Auths() != 1 {
		t.Fatalf("two messages took %d connections and %d logins, want 1 and 1", s.account.Connections(), s.account.Auths())
	}

	// The next message goes to the changed account, on a new connection.
	s.account.SetUsers(map[string]string{"acme@gmail.com": "new-password"})
	s.putProfile(t, map[string]any{"password": "new-password"})
	s.waitStatus(t, s.accept(t, invoice()), "sent")
	if s.account.Connections() != 2 || s.account.Auths() != 2 {
		t.Fatalf("after a password change: %d connections, %d logins; want a new login", s.account.Connections(), s.account.Auths())
	}

	// A session the server closed while idle is replaced without spending
	// an attempt.
	s.account.DropConnections()
	done := s.waitStatus(t, s.accept(t, invoice()), "sent")
	if a := attempts(done); len(a) != 1 {
		t.Fatalf("stale session cost an attempt: %v", a)
	}
}

func TestRefusedLoginIsDeferredUntilFixed(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, map[string]any{"password": "wrong"})
	id := s.accept(t, invoice())
	deferred := s.waitStatus(t, id, "deferred")
	if a := attempts(deferred); len(a) == 0 || a[0]["error"] != "auth_failed" || a[0]["smtp_code"] != float64(535) {
		t.Fatalf("attempts = %v", a)
	}
	profile := s.do("GET", "/v1/tenants/acme/smtp", s.adminToken, nil).json(t)
	le, _ := profile["last_error"].(map[string]any)
	if le["code"] != "auth_failed" || le["smtp_code"] != float64(535) {
		t.Fatalf("last_error = %v", profile["last_error"])
	}
	s.putProfile(t, map[string]any{"password": tenantPass})
	s.waitStatus(t, id, "sent")
	if p := s.do("GET", "/v1/tenants/acme/smtp", s.adminToken, nil).json(t); p["last_error"] != nil {
		t.Errorf("last_error not cleared: %v", p["last_error"])
	}
}

func TestFallbackToDefault(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, map[string]any{"password": "wrong", "fallback_to_default": true})
	done := s.waitStatus(t, s.accept(t, invoice()), "sent")
	a := attempts(done)
	if len(a) != 2 || a[0]["route"] != "tenant" || a[0]["error"] != "auth_failed" || a[1]["route"] != "default" || done["route"] != "default" {
		t.Fatalf("status = %v", done)
	}
	msg := s.relay.WaitMessages(t, 1, 5*time.Second)[0]
	mr, _ := mail.CreateReader(bytes.NewReader(msg.Data))
	replyTo, _ := mr.Header.AddressList("Reply-To")
	if msg.From != "no-reply@platform.example" || len(replyTo) != 1 || replyTo[0].Address != "acme@gmail.com" {
		t.Errorf("fallback message: from %s reply-to %v", msg.From, replyTo)
	}
}

func TestLostAfterDotIsRetriedAndMarked(t *testing.T) {
	var calls atomic.Int32
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{DropAfterData: func(smtptest.Message) bool {
		return calls.Add(1) == 1
	}}})
	s.putProfile(t, nil)
	done := s.waitStatus(t, s.accept(t, invoice()), "sent")
	a := attempts(done)
	if len(a) != 2 || a[0]["ambiguous"] != true || a[0]["error"] != "connection_lost" {
		t.Fatalf("attempts = %v", a)
	}
	if n := len(s.account.Messages()); n != 2 {
		t.Fatalf("server holds %d copies, want 2 (the known duplicate)", n)
	}
}

func TestAcceptRefusals(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)

	mismatch := invoice()
	mismatch["from"] = map[string]string{"email": "someone-else@gmail.com"}
	if r := s.post(t, mismatch); r.status != 422 || r.code(t) != "from_mismatch" {
		t.Errorf("from mismatch: %d %s", r.status, r.body)
	}

	bad := invoice()
	bad["to"] = []map[string]string{{"email": "not an address"}}
	bad["subject"] = "hi\r\nBcc: victim@example.com"
	bad["headers"] = map[string]string{"Bcc": "x@example.com"}
	bad["attachments"] = []map[string]string{{"filename": "a.pdf", "content": "%%%not base64"}}
	r := s.post(t, bad)
	if r.status != 422 || r.code(t) != "validation_failed" {
		t.Fatalf("invalid: %d %s", r.status, r.body)
	}
	for _, f := range []string{"to[0].email", "subject", "attachments[0].content"} {
		if !hasField(t, r, f) {
			t.Errorf("no error for %s: %s", f, r.body)
		}
	}
	big := invoice()
	big["text"] = strings.Repeat("x", 3<<20)
	if r := s.post(t, big); r.status != 413 || r.code(t) != "payload_too_large" {
		t.Errorf("oversized body: %d %s", r.status, r.body)
	}
	if r := s.post(t, `{"tenant_id": "acme", "to": [`); r.status != 400 || r.code(t) != "invalid_json" {
		t.Errorf("truncated: %d %s", r.status, r.body)
	}
	if r := s.do("GET", "/v1/messages/01JDXXXXXXXXXXXXXXXXXXXXXX-0", s.sendToken, nil); r.status != 404 {
		t.Errorf("unknown id: %d", r.status)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(s.account.Messages()); n != 0 {
		t.Fatalf("%d refused messages reached SMTP", n)
	}
}

func TestNoRoute(t *testing.T) {
	h := newHarness(t, options{}) // no relay
	in := invoice()
	in["tenant_id"] = "nobody"
	if r := h.do("POST", "/v1/messages", h.sendToken, in); r.status != 422 || r.code(t) != "no_route" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestAcceptWhileRedisDown(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	s.redis.Stop(t)
	start := time.Now()
	r := s.post(t, invoice())
	if r.status != http.StatusServiceUnavailable || r.code(t) != "unavailable" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("503 took %v", took)
	}
}

func TestSendingQuotaHoldsTheAccount(t *testing.T) {
	var datas atomic.Int32
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Data: func(smtptest.Message) *smtp.SMTPError {
		datas.Add(1)
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 4, 5}, Message: "Daily user sending quota exceeded."}
	}}})
	s.putProfile(t, nil)
	first := s.waitStatus(t, s.accept(t, invoice()), "deferred")
	if a := attempts(first); len(a) != 1 || a[0]["smtp_code"] != float64(550) || a[0]["enhanced_code"] != "5.4.5" {
		t.Fatalf("quota reply not recorded as a deferral: %v", first)
	}
	second := s.waitStatus(t, s.accept(t, invoice()), "deferred")
	if a := attempts(second); len(a) != 0 {
		t.Fatalf("a held account was tried again: %v", a)
	}
	next, err := time.Parse(time.RFC3339, second["next_attempt_at"].(string))
	if err != nil || time.Until(next) < 9*time.Minute {
		t.Errorf("held until %v, want the harness's 10-minute quota hold", second["next_attempt_at"])
	}
	if n := datas.Load(); n != 1 {
		t.Errorf("server saw %d DATA commands, want 1", n)
	}
	if m := string(s.do("GET", "/metrics", "", nil).body); !strings.Contains(m, "outbound_smtp_accounts_held 1\n") {
		t.Errorf("/metrics does not count the held account:\n%s", grepLines(m, "outbound_smtp_"))
	}
}

func TestFallbackWhenUnreachableForTheWholeWindow(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, func(o *options) { o.retryMaxAge = 1500 * time.Millisecond })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.putProfile(t, map[string]any{"port": closed, "fallback_to_default": true})

	done := s.waitStatus(t, s.accept(t, invoice()), "sent")
	a := attempts(done)
	if len(a) < 2 || a[0]["error"] != "connect_failed" || a[len(a)-1]["route"] != "default" || done["route"] != "default" {
		t.Fatalf("status = %v", done)
	}
	for _, at := range a[:len(a)-1] {
		if at["route"] != "tenant" {
			t.Errorf("the default relay was used before the retry window was spent: %v", a)
		}
	}
	if n := len(s.relay.Messages()); n != 1 {
		t.Fatalf("relay received %d messages", n)
	}
}

// dummyRelay is a default relay for tests that only accept messages.
func dummyRelay() *transport.Server {
	return &transport.Server{Host: "127.0.0.1", Port: 9, Security: tenant.SecurityTLS, Auth: tenant.AuthPlain,
		Username: "x", Password: secret.New("x"), Trusted: true}
}

// TestSlowSendKeepsItsClaim: a send slower than the claim timeout (2s in
// the harness) is not taken over by another worker, so it goes out once.
func TestSlowSendKeepsItsClaim(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Stall: func(stage string) time.Duration {
		if stage == smtptest.StageData {
			return 3500 * time.Millisecond
		}
		return 0
	}}})
	s.putProfile(t, nil)
	done := s.waitStatus(t, s.accept(t, invoice()), "sent")
	if a := attempts(done); len(a) != 1 {
		t.Fatalf("attempts: %v", a)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(s.account.Messages()); n != 1 {
		t.Fatalf("the slow message was sent %d times: its claim went stale", n)
	}
}
