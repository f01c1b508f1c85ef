package systemtest

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// tenantPages walks GET /v1/tenants in pages of limit and returns each
// summary by tenant id, failing on a tenant answered twice or out of order.
func (h *harness) tenantPages(t *testing.T, limit string) ([]string, map[string]map[string]any) {
	t.Helper()
	var ids []string
	byID := map[string]map[string]any{}
	after := ""
	for range 100 {
		path := "/v1/tenants?limit=" + limit
		if after != "" {
			path += "&after=" + after
		}
		r := h.do("GET", path, h.adminToken, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		body := r.json(t)
		for _, v := range body["tenants"].([]any) {
			sum := v.(map[string]any)
			id := sum["tenant_id"].(string)
			if byID[id] != nil || (len(ids) > 0 && id <= ids[len(ids)-1]) {
				t.Fatalf("%s answered twice or out of order after %v", id, ids)
			}
			ids = append(ids, id)
			byID[id] = sum
		}
		next, _ := body["next"].(string)
		if next == "" {
			return ids, byID
		}
		after = next
	}
	t.Fatal("no end to the pages")
	return nil, nil
}

// The operator's list of tenants names each tenant that has a profile, a
// status, a suppression or queued mail, with its route, profile state,
// pause, open circuit, held messages and recent outcomes.
func TestListTenants(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, func(o *options) { o.smtpTimeout = time.Second })
	s.putProfile(t, nil) // acme: its own account, which works
	silent := smtptest.StartSilent(t)
	s.putAccount(t, "silent", silent.Port())
	badpass := map[string]any{"sender_name": "Bad", "email": "acme@gmail.com", "password": "wrong password",
		"host": "127.0.0.1", "port": s.account.Port(), "security": "tls"}
	if r := s.do("PUT", "/v1/tenants/badpass/smtp", s.adminToken, badpass); r.status != http.StatusCreated {
		t.Fatalf("PUT badpass: %d %s", r.status, r.body)
	}
	if r := s.do("PUT", "/v1/tenants/paused/status", s.adminToken, map[string]any{"sending": "paused", "reason": "unpaid"}); r.status != http.StatusOK {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	if r := s.do("PUT", "/v1/tenants/quiet/suppressions/x@example.com", s.adminToken, nil); r.status != http.StatusOK {
		t.Fatalf("suppress: %d %s", r.status, r.body)
	}
	sent := []string{s.accept(t, acmeTo("client@example.com")), s.accept(t, oneRecipient("gamma"))}
	for range 4 {
		s.accept(t, s.fromAcmeAccount("silent"))
	}
	held := s.accept(t, s.fromAcmeAccount("badpass"))
	for _, id := range sent {
		s.waitStatus(t, id, "sent")
	}
	s.waitStatus(t, held, "deferred")
	s.circuitOpened(t, "silent")

	all, byID := s.tenantPages(t, "50")
	want := []string{"acme", "badpass", "gamma", "paused", "quiet", "silent"}
	if !slices.Equal(all, want) {
		t.Fatalf("tenants %v, want %v", all, want)
	}
	if paged, _ := s.tenantPages(t, "2"); !slices.Equal(paged, want) {
		t.Errorf("in pages of 2: %v", paged)
	}
	check := func(id string, ok bool, what string) {
		t.Helper()
		if !ok {
			t.Errorf("%s: %s: %v", id, what, byID[id])
		}
	}
	profile := func(id string) map[string]any { p, _ := byID[id]["profile"].(map[string]any); return p }
	last24h := func(id, st string) float64 { return byID[id]["last_24h"].(map[string]any)[st].(float64) }

	check("acme", byID["acme"]["route"] == "tenant" && profile("acme")["host"] == "127.0.0.1" &&
		profile("acme")["enabled"] == true && byID["acme"]["sending"] == "active" && last24h("acme", "sent") == 1, "own account, one sent")
	check("gamma", byID["gamma"]["route"] == "default" && profile("gamma") == nil && last24h("gamma", "sent") == 1, "default relay, one sent")
	check("paused", byID["paused"]["sending"] == "paused" && byID["paused"]["reason"] == "unpaid", "paused")
	check("quiet", byID["quiet"]["route"] == "default" && byID["quiet"]["circuit_open"] == false, "known by its suppression")
	check("silent", byID["silent"]["circuit_open"] == true, "circuit open")
	le, _ := profile("badpass")["last_error"].(map[string]any)
	check("badpass", le["code"] != nil && le["code"] != "circuit_open" && byID["badpass"]["held"].(float64) >= 1 &&
		last24h("badpass", "deferred") >= 1, "login refused: last_error, held, deferred")
	s.assertNeverAnswered(t, "wrong password")
	s.assertNeverAnswered(t, tenantPass)

	if r := s.do("GET", "/v1/tenants", s.acmeAdmin, nil); r.status != http.StatusForbidden || r.code(t) != "operator_only" {
		t.Errorf("a tenant's admin: %d %s", r.status, r.body)
	}
	for _, q := range []string{"limit=0", "after=-x"} {
		if r := s.do("GET", "/v1/tenants?"+q, s.adminToken, nil); r.status != http.StatusBadRequest || r.code(t) != "invalid_query" {
			t.Errorf("?%s: %d %s", q, r.status, r.body)
		}
	}
}

// fromAcmeAccount is a one-recipient message of tenant id sent from the
// address its test profile names.
func (s sendSetup) fromAcmeAccount(id string) map[string]any {
	m := oneRecipient(id)
	m["from"] = map[string]string{"email": "acme@gmail.com"}
	return m
}
