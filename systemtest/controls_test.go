package systemtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/webhook"
)

// receiver is a webhook endpoint, on TLS as every webhook must be, that
// checks every signature and can be told to fail. Its certificate is
// trusted by a harness built with its trust option.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	failN  atomic.Int32 // answer 500 this many more times
	mu     sync.Mutex
	got    []map[string]any // accepted, verified events
	posts  int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.posts++
		if err := webhook.Verify(req.Header.Get(webhook.SignatureHeader), r.secret, body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("receiver: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.failN.Load() > 0 {
			r.failN.Add(-1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("receiver: %v", err)
		}
		r.got = append(r.got, ev)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// trust adds the receiver's certificate to the harness's roots.
func (r *receiver) trust(o *options) { o.roots.AddCert(r.srv.Certificate()) }

// events returns the verified events received for a message, by type.
func (r *receiver) events(messageID string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, ev := range r.got {
		if ev["data"].(map[string]any)["message_id"] == messageID {
			out[ev["type"].(string)]++
		}
	}
	return out
}

func (r *receiver) waitEvent(t *testing.T, messageID, typ string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, ev := range r.got {
			if ev["type"] == typ && ev["data"].(map[string]any)["message_id"] == messageID {
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s event for %s", typ, messageID)
	return nil
}

func TestWebhooks(t *testing.T) {
	var dataCalls atomic.Int32
	rcv := newReceiver(t)
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Data: func(m smtptest.Message) *smtp.SMTPError {
		switch {
		case strings.Contains(string(m.Data), "Subject: defer-once") && dataCalls.Add(1) == 1:
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
		case strings.Contains(string(m.Data), "Subject: refuse"):
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "refused"}
		}
		return nil
	}}}, rcv.trust)
	s.putProfile(t, nil)

	// Before any webhook exists, an outcome writes no event at all.
	s.waitStatus(t, s.accept(t, invoice()), "sent")
	if n := s.eventsWritten(t); n != 0 {
		t.Fatalf("%d events written with no webhook listening", n)
	}

	events := []string{"message.sent", "message.deferred", "message.failed", "message.suppressed"}
	r := s.do("PUT", "/v1/webhooks/ops", s.adminToken, map[string]any{"url": rcv.srv.URL + "/hook", "events": events})
	created := r.json(t)
	if r.status != http.StatusCreated || created["secret_set"] != true || !strings.HasPrefix(created["secret"].(string), "whsec_") {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	rcv.secret = created["secret"].(string)
	if got := s.do("GET", "/v1/webhooks/ops", s.adminToken, nil); strings.Contains(string(got.body), rcv.secret) {
		t.Fatal("GET shows the secret")
	}
	if list := s.do("GET", "/v1/webhooks", s.adminToken, nil).json(t)["webhooks"].([]any); len(list) != 1 {
		t.Fatalf("list: %v", list)
	}
	for _, bad := range []map[string]any{{"url": "ftp://x", "events": events}, {"url": rcv.srv.URL, "events": []string{"message.opened"}}} {
		if r := s.do("PUT", "/v1/webhooks/bad", s.adminToken, bad); r.status != 422 {
			t.Errorf("invalid webhook %v: %d", bad, r.status)
		}
	}
	plain := "http://" + strings.TrimPrefix(rcv.srv.URL, "https://") + "/hook"
	if r := s.do("PUT", "/v1/webhooks/plain", s.adminToken, map[string]any{"url": plain, "events": events}); r.status != 422 ||
		fieldCode(t, r, "url") != "https_required" {
		t.Errorf("http:// webhook: %d %s", r.status, r.body)
	}

	send := func(subject string, to string) string {
		in := invoice()
		in["subject"], in["to"] = subject, []map[string]string{{"email": to}}
		delete(in, "bcc")
		return s.accept(t, in)
	}
	rcv.failN.Store(3) // the first event needs four tries
	sentID := send("hello", "client@example.com")
	sentEv := rcv.waitEvent(t, sentID, "message.sent")
	data := sentEv["data"].(map[string]any)
	if data["tenant_id"] != "acme" || data["status"] != "sent" || data["route"] != "tenant" ||
		data["metadata"].(map[string]any)["invoice_id"] != "42" || data["tags"].([]any)[0] != "invoice" ||
		data["attempt"].(map[string]any)["smtp_code"] != float64(250) {
		t.Fatalf("sent event: %v", sentEv)
	}
	deferredID := send("defer-once", "client@example.com")
	rcv.waitEvent(t, deferredID, "message.sent")
	failedID := send("refuse", "client@example.com")
	failedEv := rcv.waitEvent(t, failedID, "message.failed")
	if failedEv["data"].(map[string]any)["attempt"].(map[string]any)["smtp_code"] != float64(554) {
		t.Fatalf("failed event: %v", failedEv)
	}
	s.do("PUT", "/v1/tenants/acme/suppressions/nobody@example.com", s.adminToken, nil)
	suppressedID := send("hello", "nobody@example.com")
	rcv.waitEvent(t, suppressedID, "message.suppressed")

	time.Sleep(300 * time.Millisecond) // anything extra would have arrived by now
	for id, want := range map[string]map[string]int{
		sentID:       {"message.sent": 1},
		deferredID:   {"message.deferred": 1, "message.sent": 1},
		failedID:     {"message.failed": 1},
		suppressedID: {"message.suppressed": 1},
	} {
		if got := rcv.events(id); len(got) != len(want) || got["message.sent"] != want["message.sent"] ||
			got["message.deferred"] != want["message.deferred"] || got["message.failed"] != want["message.failed"] ||
			got["message.suppressed"] != want["message.suppressed"] {
			t.Errorf("events of %s: %v, want %v", id, got, want)
		}
	}
	ds := s.do("GET", "/v1/webhooks/ops/deliveries", s.adminToken, nil).json(t)["deliveries"].([]any)
	tries := 0
	for _, d := range ds {
		m := d.(map[string]any)
		if m["message_id"] == sentID {
			tries++
			if m["attempt"] == float64(4) && m["delivered"] != true {
				t.Errorf("fourth try not delivered: %v", m)
			}
		}
	}
	if tries != 4 {
		t.Errorf("%d attempts listed for the first event, want 4 (three 500s, then delivered)", tries)
	}
	pageThroughDeliveries(t, s.harness, "ops", ds)

	r = s.do("PUT", "/v1/webhooks/ops", s.adminToken, map[string]any{"url": rcv.srv.URL, "events": []string{"message.failed"}})
	if r.status != http.StatusOK || r.json(t)["secret"] != nil {
		t.Fatalf("replace: %d %s", r.status, r.body)
	}
	if r := s.do("DELETE", "/v1/webhooks/ops", s.adminToken, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d", r.status)
	}
	if r := s.do("GET", "/v1/webhooks/ops", s.adminToken, nil); r.status != http.StatusNotFound {
		t.Fatalf("after delete: %d", r.status)
	}
	if r := s.do("GET", "/v1/webhooks", s.sendToken, nil); r.status != http.StatusForbidden {
		t.Fatalf("send key on webhooks: %d", r.status)
	}
}

func TestScheduledSendAndCancel(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	in := invoice()
	in["send_at"] = time.Now().Add(2500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	r := s.post(t, in)
	if r.status != http.StatusAccepted || r.json(t)["status"] != "scheduled" {
		t.Fatalf("scheduled: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	cancelled := s.accept(t, in)
	if r := s.do("DELETE", "/v1/messages/"+cancelled, s.sendToken, nil); r.status != 200 || r.json(t)["status"] != "cancelled" {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	time.Sleep(time.Second)
	if st := s.do("GET", "/v1/messages/"+id, s.sendToken, nil).json(t); st["status"] != "scheduled" || len(s.account.Messages()) != 0 {
		t.Fatalf("sent early: %v", st)
	}
	done := s.waitStatus(t, id, "sent")
	sentAt, _ := time.Parse(time.RFC3339Nano, done["sent_at"].(string))
	sendAt, _ := time.Parse(time.RFC3339Nano, in["send_at"].(string))
	if sentAt.Before(sendAt) {
		t.Errorf("sent at %v, before send_at %v", sentAt, sendAt)
	}
	if r := s.do("DELETE", "/v1/messages/"+id, s.sendToken, nil); r.status != http.StatusConflict || r.code(t) != "not_cancellable" {
		t.Fatalf("cancel after sending: %d %s", r.status, r.body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(s.account.Messages()); n != 1 {
		t.Fatalf("%d messages sent, want 1 (the cancelled one stays unsent)", n)
	}
	in["send_at"] = time.Now().Add(31 * 24 * time.Hour).Format(time.RFC3339)
	if r := s.post(t, in); r.status != 422 || !hasField(t, r, "send_at") {
		t.Fatalf("31 days ahead: %d %s", r.status, r.body)
	}
}

func TestHardBounceSuppressesNext(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Rcpt: func(to string) *smtp.SMTPError {
		if to == "gone@example.com" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "The email account does not exist"}
		}
		return nil
	}}})
	s.putProfile(t, nil)
	in := invoice()
	in["to"] = []map[string]string{{"email": "gone@example.com"}, {"email": "client@example.com"}}
	delete(in, "bcc")
	s.waitStatus(t, s.accept(t, in), "sent")

	entry := s.do("GET", "/v1/tenants/acme/suppressions/gone@example.com", s.adminToken, nil).json(t)
	if entry["source"] != "bounce" || entry["code"] != "5.1.1" {
		t.Fatalf("suppression: %v", entry)
	}
	next := s.waitStatus(t, s.accept(t, in), "sent")
	sup, _ := next["suppressed_recipients"].([]any)
	if len(sup) != 1 || sup[0].(map[string]any)["email"] != "gone@example.com" ||
		!strings.Contains(sup[0].(map[string]any)["reason"].(string), "5.1.1") {
		t.Fatalf("next message: %v", next)
	}
	last := s.account.Messages()[len(s.account.Messages())-1]
	if len(last.To) != 1 || last.To[0] != "client@example.com" {
		t.Fatalf("suppressed recipient still in the envelope: %v", last.To)
	}

	// Only suppressed recipients: the message is suppressed, not sent.
	only := invoice()
	only["to"] = []map[string]string{{"email": "Gone@Example.com"}}
	delete(only, "bcc")
	s.waitStatus(t, s.accept(t, only), "suppressed")

	s.do("PUT", "/v1/tenants/acme/suppressions/manual@example.com", s.adminToken, map[string]string{"reason": "asked to stop"})
	list := s.do("GET", "/v1/tenants/acme/suppressions?limit=1", s.adminToken, nil).json(t)
	if len(list["suppressions"].([]any)) != 1 || list["next"] != "gone@example.com" {
		t.Fatalf("page: %v", list)
	}
	if r := s.do("DELETE", "/v1/tenants/acme/suppressions/gone@example.com", s.adminToken, nil); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	if r := s.do("GET", "/v1/tenants/acme/suppressions/gone@example.com", s.adminToken, nil); r.status != 404 {
		t.Fatalf("after delete: %d", r.status)
	}
	if r := s.do("GET", "/v1/tenants/acme/suppressions/not-an-address", s.adminToken, nil); r.status != 422 {
		t.Fatalf("bad address: %d", r.status)
	}
}

func TestPauseAndResume(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	in := invoice()
	// Due after the pause below: the tenant is paused when they fall due.
	in["send_at"] = time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	var ids []string
	for range 3 {
		ids = append(ids, s.accept(t, in))
	}
	r := s.do("PUT", "/v1/tenants/acme/status", s.adminToken, map[string]string{"sending": "paused", "reason": "billing overdue"})
	if r.status != 200 || r.json(t)["sending"] != "paused" {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	if r := s.post(t, invoice()); r.status != http.StatusLocked || r.code(t) != "tenant_paused" {
		t.Fatalf("POST while paused: %d %s", r.status, r.body)
	}
	time.Sleep(3 * time.Second)
	for _, id := range ids {
		if st := s.do("GET", "/v1/messages/"+id, s.sendToken, nil).json(t); st["status"] != "queued" {
			t.Fatalf("while paused: %v", st)
		}
	}
	if len(s.account.Messages()) != 0 {
		t.Fatal("a paused tenant's message was sent")
	}
	if st := s.do("GET", "/v1/tenants/acme/status", s.adminToken, nil).json(t); st["reason"] != "billing overdue" {
		t.Fatalf("status: %v", st)
	}
	s.do("PUT", "/v1/tenants/acme/status", s.adminToken, map[string]string{"sending": "active"})
	for _, id := range ids {
		if a := attempts(s.waitStatus(t, id, "sent")); len(a) != 1 {
			t.Errorf("waiting while paused cost attempts: %v", a)
		}
	}
}

func TestTenantBoundKey(t *testing.T) {
	h := newHarness(t, options{relay: dummyRelay()})
	if r := h.do("POST", "/v1/messages", h.acmeToken, oneRecipient("acme")); r.status != http.StatusAccepted {
		t.Fatalf("own tenant: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/v1/messages", h.acmeToken, oneRecipient("beta")); r.status != http.StatusForbidden || r.code(t) != "forbidden" {
		t.Fatalf("other tenant: %d %s", r.status, r.body)
	}
	beta := h.do("POST", "/v1/messages", h.sendToken, oneRecipient("beta")).json(t)["id"].(string)
	if r := h.do("GET", "/v1/messages/"+beta, h.acmeToken, nil); r.status != http.StatusNotFound {
		t.Fatalf("another tenant's message: %d (must not reveal it exists)", r.status)
	}
	if r := h.do("DELETE", "/v1/messages/"+beta, h.acmeToken, nil); r.status != http.StatusNotFound {
		t.Fatalf("cancel another tenant's message: %d", r.status)
	}
	if r := h.do("GET", "/v1/tenants/acme/smtp", h.acmeToken, nil); r.status != http.StatusForbidden {
		t.Fatalf("send key on admin route: %d", r.status)
	}
}

// eventsWritten is how many entries the partitions' event streams have
// ever received (XINFO STREAM's entries-added: the fan-out deletes what it
// has handled).
func (h *harness) eventsWritten(t *testing.T) int64 {
	t.Helper()
	ctx := context.Background()
	keys, err := h.rdb.Keys(ctx, "outbound:{q*}:events").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, k := range keys {
		info, err := h.rdb.XInfoStream(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += info.EntriesAdded
	}
	return n
}
