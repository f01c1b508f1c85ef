package systemtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

type batchResult struct {
	Status  int `json:"status"`
	Message *struct {
		ID, Status, TenantID, Route string
	} `json:"message"`
	Problem *struct {
		Code   string
		Errors []struct{ Field, Code string }
	} `json:"problem"`
}

// postBatch sends messages to POST /v1/messages/batch and expects a 200
// with one result per message.
func (h *harness) postBatch(t *testing.T, token string, messages []any, headers ...string) []batchResult {
	t.Helper()
	r := h.do("POST", "/v1/messages/batch", token, map[string]any{"messages": messages}, headers...)
	if r.status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	var out struct{ Results []batchResult }
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != len(messages) {
		t.Fatalf("%d results for %d messages: %s", len(out.Results), len(messages), r.body)
	}
	return out.Results
}

func TestBatchAcceptsEachMessageOnItsOwn(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	bad := invoice()
	bad["to"] = []map[string]string{{"email": "not an address"}}
	misspelt := oneRecipient("acme")
	misspelt["attachements"] = []any{}
	got := s.postBatch(t, s.sendToken, []any{invoice(), bad, oneRecipient("beta"), misspelt, "not a message"})

	want := []struct {
		status      int
		route, code string
		field       string
	}{
		{202, "tenant", "", ""},
		{422, "", "validation_failed", "to[0].email"},
		{202, "default", "", ""},
		{422, "", "validation_failed", "attachements"},
		{422, "", "validation_failed", "(body)"},
	}
	for i, w := range want {
		r := got[i]
		switch {
		case r.Status != w.status:
			t.Errorf("message %d: status %d, want %d", i, r.Status, w.status)
		case w.route != "" && (r.Message == nil || r.Message.Route != w.route || r.Message.Status != "queued" || r.Problem != nil):
			t.Errorf("message %d: %+v, want queued on %s", i, r.Message, w.route)
		case w.code != "" && (r.Problem == nil || r.Problem.Code != w.code || len(r.Problem.Errors) != 1 ||
			r.Problem.Errors[0].Field != w.field || r.Message != nil):
			t.Errorf("message %d: %+v, want %s on %s", i, r.Problem, w.code, w.field)
		}
	}
	// A tenant-bound key queues for its own tenant only, message by message.
	bound := s.postBatch(t, s.acmeToken, []any{oneRecipient("beta"), invoice()})
	if bound[0].Status != 403 || bound[0].Problem == nil || bound[0].Problem.Code != "forbidden" || bound[1].Status != 202 {
		t.Fatalf("tenant-bound key: %+v", bound)
	}
	for _, id := range []string{got[0].Message.ID, got[2].Message.ID, bound[1].Message.ID} {
		s.waitStatus(t, id, "sent")
	}
	if n, m := len(s.account.Messages()), len(s.relay.Messages()); n != 2 || m != 1 {
		t.Errorf("the tenant's account got %d messages and the relay %d, want 2 and 1", n, m)
	}
}

func TestBatchRefusals(t *testing.T) {
	h := newHarness(t, options{})
	many := make([]any, 101)
	for i := range many {
		many[i] = oneRecipient("beta")
	}
	cases := []struct {
		name, body, code, field string
		status                  int
	}{
		{"no messages", `{"messages": []}`, "validation_failed", "messages", 422},
		{"no list", `{}`, "validation_failed", "messages", 422},
		{"too many", string(must(json.Marshal(map[string]any{"messages": many}))), "validation_failed", "messages", 422},
		{"not a list", `{"messages": {}}`, "validation_failed", "messages", 422},
		{"unknown field", `{"messages": [], "tenant_id": "acme"}`, "validation_failed", "tenant_id", 422},
		{"truncated", `{"messages": [{"tenant_id": "acme"`, "invalid_json", "", 400},
		// The whole batch is held to one message's limit.
		{"too large", `{"messages": [{"text": "` + strings.Repeat("x", 3<<20) + `"}]}`, "payload_too_large", "", 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("POST", "/v1/messages/batch", h.sendToken, tc.body)
			if r.status != tc.status || r.code(t) != tc.code || (tc.field != "" && !hasField(t, r, tc.field)) {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	if r := h.do("POST", "/v1/messages/batch", "", `{"messages": []}`); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/v1/messages/batch", h.sendToken, `{"messages": []}`, "Idempotency-Key", "has space"); r.status != http.StatusBadRequest || r.code(t) != "invalid_header" {
		t.Errorf("bad Idempotency-Key: %d %s", r.status, r.body)
	}
}

func TestBatchIdempotencyKeyReplaysEachMessage(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	invoices := func(subjects ...string) []any {
		out := make([]any, len(subjects))
		for i, subject := range subjects {
			m := oneRecipient("beta")
			m["subject"] = subject
			out[i] = m
		}
		return out
	}
	first := s.postBatch(t, s.sendToken, invoices("Invoice 1", "Invoice 2"), "Idempotency-Key", "november-invoices")
	again := s.postBatch(t, s.sendToken, invoices("Invoice 1", "Invoice 2"), "Idempotency-Key", "november-invoices")
	for i := range first {
		if first[i].Status != 202 || first[i].Message == nil || again[i].Status != 200 || again[i].Message == nil || again[i].Message.ID != first[i].Message.ID {
			t.Errorf("message %d: first %+v, then %+v", i, first[i], again[i])
		}
	}
	got := s.postBatch(t, s.sendToken, invoices("Invoice 1", "Invoice 3"), "Idempotency-Key", "november-invoices")
	if got[0].Status != 200 || got[1].Status != 409 || got[1].Problem.Code != "idempotency_key_reused" {
		t.Errorf("changed second message: %+v", got)
	}
	// Without a key, the same batch is new messages.
	if got := s.postBatch(t, s.sendToken, invoices("Invoice 1")); got[0].Status != 202 || got[0].Message.ID == first[0].Message.ID {
		t.Errorf("without a key: %+v", got)
	}
}

func TestBatchSpendsTheTenantsRate(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, func(o *options) { o.rateLimit = ratelimit.Limit{PerMinute: 3, PerDay: 100} })
	messages := make([]any, 5)
	for i := range messages {
		messages[i] = oneRecipient("beta")
	}
	var accepted, limited int
	for _, r := range s.postBatch(t, s.sendToken, messages) {
		switch {
		case r.Status == 202:
			accepted++
		case r.Status == 429 && r.Problem.Code == "rate_limited":
			limited++
		default:
			t.Errorf("unexpected result %+v", r)
		}
	}
	if accepted != 3 || limited != 2 {
		t.Errorf("%d accepted and %d rate limited, want 3 and 2", accepted, limited)
	}
}

// TestBatchWhileRedisDown: every message is refused with a 503 the caller
// can retry, and the batch as a whole still answers. It takes longer than
// TestAcceptWhileRedisDown's single message: the messages that arrive while
// the first one's script call is on the wire wait for it (group commit), so
// the batch sits through two failed rounds of dialling (about 4 s here).
func TestBatchWhileRedisDown(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	s.redis.Stop(t)
	start := time.Now()
	for i, r := range s.postBatch(t, s.sendToken, []any{invoice(), invoice()}) {
		if r.Status != http.StatusServiceUnavailable || r.Problem == nil || r.Problem.Code != "unavailable" {
			t.Errorf("message %d: %+v", i, r)
		}
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("the batch took %v", took)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
