package systemtest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// wantOperatorOnly fails unless r is a 403 operator_only whose detail
// names each of what.
func wantOperatorOnly(t *testing.T, action string, r response, what ...string) {
	t.Helper()
	if r.status != http.StatusForbidden || r.code(t) != "operator_only" {
		t.Errorf("%s: %d %s, want 403 operator_only", action, r.status, r.body)
		return
	}
	detail, _ := r.json(t)["detail"].(string)
	for _, w := range what {
		if !strings.Contains(detail, w) {
			t.Errorf("%s: detail %q does not name %s", action, detail, w)
		}
	}
}

func wantStatus(t *testing.T, action string, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: %d %s, want %d", action, r.status, r.body, status)
	}
}

// A tenant-bound admin key (admin@acme) is the tenant's own admin: its
// account, its suppressions and its messages, within the limits the
// operator set. The harness's service defaults are 1000 recipients a
// minute, 100000 a day and 3 connections.
func TestTenantAdminKey(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Rcpt: func(to string) *smtp.SMTPError {
		if to == "gone@example.com" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}}})
	tenantAdmin := s.acmeAdmin
	smtpPath := "/v1/tenants/acme/smtp"
	profile := func(extra map[string]any) map[string]any {
		in := map[string]any{"sender_name": "Acme Trading", "email": "acme@gmail.com", "password": tenantPass,
			"host": "127.0.0.1", "port": s.account.Port(), "security": "tls"}
		for k, v := range extra {
			in[k] = v
		}
		return in
	}
	limits := func(perMinute, perDay, conns int) map[string]any {
		return map[string]any{"rate_limit": map[string]int{"per_minute": perMinute, "per_day": perDay}, "max_connections": conns}
	}

	// Its own profile, within the service defaults.
	wantOperatorOnly(t, "create above the default rate", s.do("PUT", smtpPath, tenantAdmin,
		profile(map[string]any{"rate_limit": map[string]int{"per_minute": 2000, "per_day": 1000}})), "rate_limit.per_minute")
	wantOperatorOnly(t, "create above the default connections", s.do("PUT", smtpPath, tenantAdmin,
		profile(map[string]any{"max_connections": 4})), "max_connections")
	wantStatus(t, "GET after refused creates", s.do("GET", smtpPath, tenantAdmin, nil), http.StatusNotFound)
	wantStatus(t, "create", s.do("PUT", smtpPath, tenantAdmin, profile(nil)), http.StatusCreated)
	wantStatus(t, "read", s.do("GET", smtpPath, tenantAdmin, nil), http.StatusOK)
	if r := s.do("POST", smtpPath+"/verify", tenantAdmin, nil); r.json(t)["ok"] != true {
		t.Errorf("verify: %s", r.body)
	}
	wantStatus(t, "lower the limits", s.do("PUT", smtpPath, tenantAdmin, profile(limits(500, 50000, 2))), http.StatusOK)
	wantStatus(t, "keep the limits", s.do("PUT", smtpPath, tenantAdmin, profile(limits(500, 50000, 2))), http.StatusOK)

	// Never above what is in force, even back up to the default.
	wantOperatorOnly(t, "raise the rate", s.do("PUT", smtpPath, tenantAdmin, profile(limits(600, 50000, 2))), "rate_limit.per_minute")
	wantOperatorOnly(t, "raise the connections", s.do("PUT", smtpPath, tenantAdmin, profile(limits(500, 50000, 3))), "max_connections")
	wantOperatorOnly(t, "drop the limits", s.do("PUT", smtpPath, tenantAdmin, profile(nil)),
		"rate_limit.per_minute", "rate_limit.per_day", "max_connections")
	wantOperatorOnly(t, "delete a limited profile", s.do("DELETE", smtpPath, tenantAdmin, nil), "rate_limit")
	if got := s.do("GET", smtpPath, s.adminToken, nil).json(t); got["version"] != float64(3) {
		t.Errorf("refused writes changed the profile: %v", got)
	}

	// The operator raises them; the tenant's admin may keep them.
	wantStatus(t, "operator raises", s.do("PUT", smtpPath, s.adminToken, profile(limits(5000, 500000, 10))), http.StatusOK)
	kept := profile(limits(5000, 500000, 10))
	kept["sender_name"] = "Acme Renamed"
	wantStatus(t, "keep the operator's limits", s.do("PUT", smtpPath, tenantAdmin, kept), http.StatusOK)

	// Its messages: admin implies send, for its own tenant only.
	in := oneRecipient("acme")
	delete(in, "from")
	in["to"] = []map[string]string{{"email": "gone@example.com"}, {"email": "client@example.com"}}
	r := s.do("POST", "/v1/messages", tenantAdmin, in)
	if r.status != http.StatusAccepted {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	s.waitStatus(t, id, "sent")
	wantStatus(t, "read its message", s.do("GET", "/v1/messages/"+id, tenantAdmin, nil), http.StatusOK)
	later := oneRecipient("acme")
	delete(later, "from")
	later["send_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if r := s.do("POST", "/v1/messages", tenantAdmin, later); r.status != http.StatusAccepted {
		t.Errorf("schedule: %d %s", r.status, r.body)
	} else {
		wantStatus(t, "cancel its message", s.do("DELETE", "/v1/messages/"+r.json(t)["id"].(string), tenantAdmin, nil), http.StatusOK)
	}
	wantStatus(t, "another tenant's profile", s.do("PUT", "/v1/tenants/beta/smtp", tenantAdmin, profile(nil)), http.StatusForbidden)

	// Suppressions: its own, but not the ones a bounce added.
	supp := "/v1/tenants/acme/suppressions/"
	if e := s.do("GET", supp+"gone@example.com", tenantAdmin, nil).json(t); e["source"] != "bounce" {
		t.Fatalf("bounce entry: %v", e)
	}
	wantOperatorOnly(t, "remove a bounce", s.do("DELETE", supp+"gone@example.com", tenantAdmin, nil), "bounce")
	wantOperatorOnly(t, "replace a bounce", s.do("PUT", supp+"gone@example.com", tenantAdmin, map[string]string{"reason": "mine"}), "bounce")
	if e := s.do("GET", supp+"gone@example.com", s.adminToken, nil).json(t); e["source"] != "bounce" {
		t.Errorf("a refused write changed the bounce entry: %v", e)
	}
	wantStatus(t, "add", s.do("PUT", supp+"asked@example.com", tenantAdmin, map[string]string{"reason": "asked to stop"}), http.StatusOK)
	wantStatus(t, "operator adds", s.do("PUT", supp+"ops@example.com", s.adminToken, nil), http.StatusOK)
	if l := s.do("GET", "/v1/tenants/acme/suppressions", tenantAdmin, nil).json(t)["suppressions"].([]any); len(l) != 3 {
		t.Errorf("list: %v", l)
	}
	wantStatus(t, "remove its own", s.do("DELETE", supp+"asked@example.com", tenantAdmin, nil), http.StatusNoContent)
	wantStatus(t, "remove the operator's manual one", s.do("DELETE", supp+"ops@example.com", tenantAdmin, nil), http.StatusNoContent)
	wantStatus(t, "operator removes the bounce", s.do("DELETE", supp+"gone@example.com", s.adminToken, nil), http.StatusNoContent)

	// Pause and resume are the operator's.
	status := "/v1/tenants/acme/status"
	wantStatus(t, "read status", s.do("GET", status, tenantAdmin, nil), http.StatusOK)
	wantOperatorOnly(t, "pause", s.do("PUT", status, tenantAdmin, map[string]string{"sending": "paused"}), "pause")
	wantStatus(t, "operator pauses", s.do("PUT", status, s.adminToken, map[string]string{"sending": "paused"}), http.StatusOK)
	wantOperatorOnly(t, "resume", s.do("PUT", status, tenantAdmin, map[string]string{"sending": "active"}), "resume")
	if st := s.do("GET", status, s.adminToken, nil).json(t); st["sending"] != "paused" {
		t.Errorf("the tenant's admin resumed: %v", st)
	}
	wantStatus(t, "operator resumes", s.do("PUT", status, s.adminToken, map[string]string{"sending": "active"}), http.StatusOK)

	// Webhooks span tenants.
	wantOperatorOnly(t, "list webhooks", s.do("GET", "/v1/webhooks", tenantAdmin, nil), "operator")
	wantOperatorOnly(t, "add a webhook", s.do("PUT", "/v1/webhooks/mine", tenantAdmin,
		map[string]any{"url": "https://hooks.example/x", "events": []string{"message.sent"}}), "operator")

	// Deleting a profile whose limits are above the defaults lowers them.
	wantStatus(t, "delete", s.do("DELETE", smtpPath, tenantAdmin, nil), http.StatusNoContent)
}
