package systemtest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// Every endpoint that reads or writes storage answers 503 unavailable,
// with Retry-After, while Redis is down, and quickly: the outage is told
// apart from a fault of the service (500) by the stores, not by the api.
func TestEveryStorageEndpointAnswers503WhileRedisIsDown(t *testing.T) {
	h := newHarness(t, options{relay: dummyRelay()})
	profile := map[string]any{"sender_name": "Acme", "email": "acme@gmail.com", "password": tenantPass,
		"host": "smtp.gmail.com", "port": 465, "security": "tls"}
	h.redis.Stop(t)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/tenants/acme/smtp", nil},
		{"PUT", "/v1/tenants/acme/smtp", profile},
		{"DELETE", "/v1/tenants/acme/smtp", nil},
		{"POST", "/v1/tenants/acme/smtp/verify", nil},
		{"GET", "/v1/tenants/acme/status", nil},
		{"PUT", "/v1/tenants/acme/status", map[string]string{"sending": "paused"}},
		{"GET", "/v1/tenants/acme/suppressions", nil},
		{"GET", "/v1/tenants/acme/suppressions/bob@example.com", nil},
		{"PUT", "/v1/tenants/acme/suppressions/bob@example.com", nil},
		{"DELETE", "/v1/tenants/acme/suppressions/bob@example.com", nil},
		{"GET", "/v1/webhooks", nil},
		{"GET", "/v1/webhooks/ops", nil},
		{"PUT", "/v1/webhooks/ops", map[string]any{"url": "https://hooks.example.com/x", "events": []string{"message.sent"}}},
		{"DELETE", "/v1/webhooks/ops", nil},
		{"GET", "/v1/webhooks/ops/deliveries", nil},
		{"POST", "/v1/messages", oneRecipient("acme")},
		{"GET", "/v1/messages/01M8SRZ23S60444QE45NP98ZTV-1", nil},
		{"DELETE", "/v1/messages/01M8SRZ23S60444QE45NP98ZTV-1", nil},
	} {
		token := h.adminToken
		if strings.HasPrefix(c.path, "/v1/messages") {
			token = h.sendToken
		}
		start := time.Now()
		r := h.do(c.method, c.path, token, c.body)
		if r.status != http.StatusServiceUnavailable || r.code(t) != "unavailable" || r.header.Get("Retry-After") != "1" {
			t.Errorf("%s %s with Redis down: %d %s (Retry-After %q)", c.method, c.path, r.status, r.body, r.header.Get("Retry-After"))
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s %s took %v", c.method, c.path, took)
		}
	}
}

// The refusals whose detail says something of the case (the status past
// cancelling, the operator's reason for a pause, the account's address)
// read as they always did.
func TestRefusalDetails(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	detail := func(r response) string {
		t.Helper()
		d, _ := r.json(t)["detail"].(string)
		return d
	}

	in := invoice()
	in["from"] = map[string]string{"email": "someone-else@gmail.com"}
	r := s.post(t, in)
	if want := "from address is not the tenant's account address: the account sends as acme@gmail.com"; r.code(t) != "from_mismatch" || detail(r) != want {
		t.Errorf("from mismatch: %d %s", r.status, r.body)
	}

	id := s.accept(t, invoice())
	s.waitStatus(t, id, "sent")
	r = s.do("DELETE", "/v1/messages/"+id, s.sendToken, nil)
	if want := "message is being sent or is done (status sent)"; r.status != http.StatusConflict || r.code(t) != "not_cancellable" || detail(r) != want {
		t.Errorf("cancel a sent message: %d %s", r.status, r.body)
	}

	s.do("PUT", "/v1/tenants/acme/status", s.adminToken, map[string]string{"sending": "paused", "reason": "billing overdue"})
	r = s.post(t, invoice())
	if want := "sending is paused: billing overdue"; r.status != http.StatusLocked || r.code(t) != "tenant_paused" || detail(r) != want {
		t.Errorf("paused: %d %s", r.status, r.body)
	}
}
