package systemtest

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

func oneRecipient(tenant string) map[string]any {
	return map[string]any{"tenant_id": tenant, "from": map[string]string{"email": "hello@" + tenant + ".example"},
		"to": []map[string]string{{"email": "client@example.com"}}, "subject": "hi", "text": "hi"}
}

func TestRateLimitBurstThen429(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, func(o *options) { o.rateLimit = ratelimit.Limit{PerMinute: 60, PerDay: 2000} })
	for i := range 60 {
		r := s.post(t, oneRecipient("beta"))
		if r.status != http.StatusAccepted {
			t.Fatalf("message %d: %d %s", i+1, r.status, r.body)
		}
		if r.header.Get("RateLimit-Limit") != "60" || r.header.Get("RateLimit-Remaining") != strconv.Itoa(59-i) {
			t.Fatalf("message %d headers: limit %q remaining %q", i+1, r.header.Get("RateLimit-Limit"), r.header.Get("RateLimit-Remaining"))
		}
	}
	r := s.post(t, oneRecipient("beta"))
	if r.status != http.StatusTooManyRequests || r.code(t) != "rate_limited" {
		t.Fatalf("61st: %d %s", r.status, r.body)
	}
	if r.header.Get("Retry-After") != "1" || r.header.Get("RateLimit-Remaining") != "0" || r.header.Get("RateLimit-Limit") != "60" {
		t.Errorf("429 headers: %v", r.header)
	}
	if n := metricValue(t, scrape(t, s.harness), `outbound_rate_limited_total{tenant=""}`); n != 1 {
		t.Errorf("outbound_rate_limited_total = %v, want 1", n)
	}
	// Another tenant has its own budget.
	if r := s.post(t, oneRecipient("gamma")); r.status != http.StatusAccepted {
		t.Errorf("other tenant: %d", r.status)
	}
	// A message that could never fit is not a 429 the caller would retry
	// forever.
	big := oneRecipient("delta")
	var to []map[string]string
	for i := range 61 {
		to = append(to, map[string]string{"email": "c" + strconv.Itoa(i) + "@example.com"})
	}
	big["to"] = to
	if r := s.post(t, big); r.status != http.StatusUnprocessableEntity || !hasField(t, r, "to") {
		t.Errorf("61 recipients at 60/min: %d %s", r.status, r.body)
	}
}

func TestRateLimitCountsRecipientsAndProfileOverride(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, func(o *options) { o.rateLimit = ratelimit.Limit{PerMinute: 60, PerDay: 2000} })
	s.putProfile(t, map[string]any{"rate_limit": map[string]int{"per_minute": 10, "per_day": 100}})
	got := s.do("GET", "/v1/tenants/acme/smtp", s.adminToken, nil).json(t)
	if rl, _ := got["rate_limit"].(map[string]any); rl["per_minute"] != float64(10) {
		t.Fatalf("profile rate_limit = %v", got["rate_limit"])
	}
	in := invoice() // one to, one bcc: two recipients
	for i := range 5 {
		if r := s.post(t, in); r.status != http.StatusAccepted || r.header.Get("RateLimit-Remaining") != strconv.Itoa(8-2*i) {
			t.Fatalf("message %d: %d remaining %q", i+1, r.status, r.header.Get("RateLimit-Remaining"))
		}
	}
	if r := s.post(t, in); r.status != http.StatusTooManyRequests {
		t.Fatalf("11th and 12th recipient: %d", r.status)
	}
	// A replay under its Idempotency-Key spends nothing, even at the limit.
	s.redis.Client(t).FlushAll(t.Context())
	s.putProfile(t, map[string]any{"rate_limit": map[string]int{"per_minute": 2, "per_day": 100}})
	first := s.post(t, in, "Idempotency-Key", "k1")
	if first.status != http.StatusAccepted {
		t.Fatalf("%d %s", first.status, first.body)
	}
	if r := s.post(t, in, "Idempotency-Key", "k1"); r.status != http.StatusOK || r.json(t)["id"] != first.json(t)["id"] {
		t.Fatalf("replay at the limit: %d %s", r.status, r.body)
	}
}

func TestTwoReplicasShareOneBudget(t *testing.T) {
	a := newHarness(t, options{rateLimit: ratelimit.Limit{PerMinute: 10, PerDay: 1000}, relay: dummyRelay()})
	b := newHarness(t, options{rateLimit: ratelimit.Limit{PerMinute: 10, PerDay: 1000}, relay: dummyRelay(), redis: a.redis})
	for i := range 10 {
		h := a
		if i%2 == 1 {
			h = b
		}
		if r := h.do("POST", "/v1/messages", h.sendToken, oneRecipient("beta")); r.status != http.StatusAccepted {
			t.Fatalf("message %d: %d %s", i+1, r.status, r.body)
		}
	}
	for _, h := range []*harness{a, b} {
		if r := h.do("POST", "/v1/messages", h.sendToken, oneRecipient("beta")); r.status != http.StatusTooManyRequests {
			t.Fatalf("11th: %d", r.status)
		}
	}
}

func TestPaceAndConnectionCap(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, map[string]any{"pace_per_minute": 120, "max_connections": 1})
	var ids []string
	for range 4 {
		ids = append(ids, s.accept(t, invoice()))
	}
	for _, id := range ids {
		done := s.waitStatus(t, id, "sent")
		if a := attempts(done); len(a) != 1 {
			t.Errorf("paced message spent %d attempts", len(a))
		}
	}
	msgs := s.account.Messages()
	for i := 1; i < len(msgs); i++ {
		// 120 a minute: one every 500ms at the earliest.
		if gap := msgs[i].At.Sub(msgs[i-1].At); gap < 450*time.Millisecond {
			t.Errorf("messages %d and %d only %v apart at a pace of 120/min", i, i+1, gap)
		}
	}
	if s.account.Connections() != 1 {
		t.Errorf("%d connections with max_connections 1", s.account.Connections())
	}
}

// Scheduled mail spends the sending window when it is sent, not when it is
// accepted: more can be scheduled than the minute allows, each 202
// describing the allowance for scheduling, and a message to send now
// finds the sending window untouched.
func TestScheduledMailSpendsTheWindowWhenSent(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, func(o *options) { o.rateLimit = ratelimit.Limit{PerMinute: 3, PerDay: 2000} })
	later := oneRecipient("beta")
	later["send_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for i := range 5 {
		r := s.post(t, later)
		if r.status != http.StatusAccepted || r.json(t)["status"] != "scheduled" {
			t.Fatalf("scheduled message %d: %d %s", i+1, r.status, r.body)
		}
		if r.header.Get("RateLimit-Limit") != "2000" || r.header.Get("RateLimit-Remaining") != strconv.Itoa(1999-i) {
			t.Fatalf("scheduled message %d headers: limit %q remaining %q", i+1, r.header.Get("RateLimit-Limit"), r.header.Get("RateLimit-Remaining"))
		}
	}
	r := s.post(t, oneRecipient("beta"))
	if r.status != http.StatusAccepted || r.header.Get("RateLimit-Limit") != "3" || r.header.Get("RateLimit-Remaining") != "2" {
		t.Fatalf("message to send now: %d, limit %q remaining %q", r.status, r.header.Get("RateLimit-Limit"), r.header.Get("RateLimit-Remaining"))
	}

	// Due together, four messages at three a minute: three go, the fourth
	// waits, still scheduled, until the window has room (20 s on).
	soon := oneRecipient("gamma")
	sendAt := time.Now().Add(500 * time.Millisecond)
	soon["send_at"] = sendAt.UTC().Format(time.RFC3339Nano)
	var ids []string
	for range 4 {
		ids = append(ids, s.accept(t, soon))
	}
	for _, id := range ids[:3] {
		s.waitStatus(t, id, "sent")
	}
	last := s.do("GET", "/v1/messages/"+ids[3], s.sendToken, nil).json(t)
	next, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(last["next_attempt_at"]))
	if last["status"] != "scheduled" || len(attempts(last)) != 0 || next.Sub(sendAt) < 19*time.Second || next.Sub(sendAt) > 22*time.Second {
		t.Fatalf("fourth message: %v, want scheduled about 20s after %v", last, sendAt)
	}
}
