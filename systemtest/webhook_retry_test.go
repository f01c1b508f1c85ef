package systemtest

import (
	"net/http"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// An operator sends a logged event again: the receiver gets the same
// event (same id, same body) a second time, for that webhook only; a
// repeat while it is queued sends it once.
func TestRetryWebhookDelivery(t *testing.T) {
	rcv, other := newReceiver(t), newReceiver(t)
	s := newSendSetup(t, smtptest.Options{}, rcv.trust, other.trust)
	for name, r := range map[string]*receiver{"ops": rcv, "other": other} {
		res := s.do("PUT", "/v1/webhooks/"+name, s.adminToken, map[string]any{"url": r.srv.URL + "/hook", "events": []string{"message.sent"}})
		if res.status != http.StatusCreated {
			t.Fatalf("PUT webhook %s: %d %s", name, res.status, res.body)
		}
		r.secret = res.json(t)["secret"].(string)
	}
	id := s.accept(t, oneRecipient("beta"))
	first := rcv.waitEvent(t, id, "message.sent")
	other.waitEvent(t, id, "message.sent")
	log := s.do("GET", "/v1/webhooks/ops/deliveries", s.adminToken, nil).json(t)["deliveries"].([]any)
	eventID := log[0].(map[string]any)["event_id"].(string)

	r := s.do("POST", "/v1/webhooks/ops/deliveries/"+eventID+"/retry", s.adminToken, nil)
	if r.status != http.StatusAccepted || r.json(t)["event_id"] != eventID || r.json(t)["delivered"] != true {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rcv.events(id)["message.sent"] < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := rcv.events(id)["message.sent"]; n != 2 {
		t.Fatalf("the receiver got the event %d times, want 2", n)
	}
	rcv.mu.Lock()
	again := rcv.got[len(rcv.got)-1]
	rcv.mu.Unlock()
	if again["id"] != first["id"] || again["created_at"] != first["created_at"] {
		t.Errorf("sent again as %v, first %v", again, first)
	}
	time.Sleep(300 * time.Millisecond)
	if n := other.events(id)["message.sent"]; n != 1 {
		t.Errorf("the other webhook got the event %d times, want 1", n)
	}
	log = s.do("GET", "/v1/webhooks/ops/deliveries", s.adminToken, nil).json(t)["deliveries"].([]any)
	if len(log) != 2 || log[0].(map[string]any)["attempt"].(float64) != 2 {
		t.Errorf("log after the retry: %v", log)
	}

	for path, want := range map[string]string{
		"/v1/webhooks/ops/deliveries/evt_0_0-1/retry":          "not_found",
		"/v1/webhooks/nohook/deliveries/" + eventID + "/retry": "not_found",
	} {
		if r := s.do("POST", path, s.adminToken, nil); r.status != http.StatusNotFound || r.code(t) != want {
			t.Errorf("POST %s: %d %s", path, r.status, r.body)
		}
	}
	if r := s.do("POST", "/v1/webhooks/ops/deliveries/"+eventID+"/retry", s.acmeAdmin, nil); r.status != http.StatusForbidden || r.code(t) != "operator_only" {
		t.Errorf("a tenant's admin: %d %s", r.status, r.body)
	}
}
