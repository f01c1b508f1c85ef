package systemtest

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// withRetention keeps records one second after their final outcome.
func withRetention(o *options) { o.retention = time.Second }

// partitionKey is a key of the message's queue partition (its id ends in
// the partition number).
func partitionKey(id, name string) string {
	return "outbound:{q" + id[strings.LastIndex(id, "-")+1:] + "}:" + name
}

// makeDue makes a scheduled message due now, as if its send_at had come:
// Redis's clock cannot be moved ten days on.
func (h *harness) makeDue(t *testing.T, id string) {
	t.Helper()
	z := redis.Z{Score: float64(time.Now().UnixMilli()), Member: id}
	if err := h.rdb.ZAddXX(context.Background(), partitionKey(id, "retry"), z).Err(); err != nil {
		t.Fatal(err)
	}
}

// A message scheduled ten days ahead, past a retention of one second,
// still has its record when it falls due; it is sent, and its record
// expires the retention after that.
func TestScheduledMessageOutlivesTheRetention(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, withRetention)
	s.putProfile(t, nil)
	in := invoice()
	in["send_at"] = time.Now().Add(10 * 24 * time.Hour).UTC().Format(time.RFC3339)
	id := s.accept(t, in)
	time.Sleep(1500 * time.Millisecond)
	if r := s.do("GET", "/v1/messages/"+id, s.sendToken, nil); r.status != http.StatusOK || r.json(t)["status"] != "scheduled" {
		t.Fatalf("scheduled message after the retention: %d %s", r.status, r.body)
	}
	s.makeDue(t, id)
	s.waitStatus(t, id, "sent")
	if n := len(s.account.Messages()); n != 1 {
		t.Fatalf("%d messages arrived, want 1", n)
	}
	time.Sleep(1500 * time.Millisecond)
	if r := s.do("GET", "/v1/messages/"+id, s.sendToken, nil); r.status != http.StatusNotFound {
		t.Fatalf("record the retention after sending: %d %s", r.status, r.body)
	}
}

// A paused tenant's queued message waits past the retention and is sent
// on resume.
func TestPausedTenantsMessageOutlivesTheRetention(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, withRetention)
	s.putProfile(t, nil)
	in := invoice()
	in["send_at"] = time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano) // due while paused
	id := s.accept(t, in)
	if r := s.do("PUT", "/v1/tenants/acme/status", s.adminToken, map[string]string{"sending": "paused"}); r.status != 200 {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	time.Sleep(3 * time.Second)
	if r := s.do("GET", "/v1/messages/"+id, s.sendToken, nil); r.status != http.StatusOK || r.json(t)["status"] != "queued" {
		t.Fatalf("paused tenant's message after the retention: %d %s", r.status, r.body)
	}
	s.do("PUT", "/v1/tenants/acme/status", s.adminToken, map[string]string{"sending": "active"})
	s.waitStatus(t, id, "sent")
}

// A message whose record is gone when it falls due ends failed with the
// code record_missing, a message.failed event and a count in /metrics.
func TestMissingRecordEndsFailed(t *testing.T) {
	rcv := newReceiver(t)
	s := newSendSetup(t, smtptest.Options{}, rcv.trust)
	s.putProfile(t, nil)
	r := s.do("PUT", "/v1/webhooks/ops", s.adminToken, map[string]any{"url": rcv.srv.URL + "/hook", "events": []string{"message.failed"}})
	if r.status != http.StatusCreated {
		t.Fatalf("webhook: %d %s", r.status, r.body)
	}
	rcv.secret = r.json(t)["secret"].(string)
	in := invoice()
	in["send_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	id := s.accept(t, in)
	if err := s.rdb.Del(context.Background(), partitionKey(id, "msg:"+id)).Err(); err != nil {
		t.Fatal(err)
	}
	s.makeDue(t, id)

	st := s.waitStatus(t, id, "failed")
	if e, _ := st["error"].(string); !strings.HasPrefix(e, "record_missing: ") {
		t.Fatalf("error = %q, want record_missing", e)
	}
	ev := rcv.waitEvent(t, id, "message.failed")
	if a, _ := ev["data"].(map[string]any)["attempt"].(map[string]any); a["error"] != "record_missing" {
		t.Fatalf("event: %v", ev)
	}
	if len(s.account.Messages()) != 0 {
		t.Fatal("a message without a record was sent")
	}
	if m := s.do("GET", "/metrics", "", nil); !strings.Contains(string(m.body), "outbound_records_missing_total 1\n") {
		t.Fatalf("/metrics does not count it:\n%s", m.body)
	}
	if logs := s.logs.String(); !strings.Contains(logs, id+": queue: the message's record was gone; failed as record_missing") {
		t.Errorf("no log line names the message:\n%s", logs)
	}
}

// The retry window starts when a message falls due, not at accept: a
// message scheduled past created_at plus the window that meets a 451 is
// retried and sent.
func TestScheduledMessageIsRetriedAfter451(t *testing.T) {
	var calls atomic.Int32
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Data: func(smtptest.Message) *smtp.SMTPError {
		if calls.Add(1) == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
		}
		return nil
	}}}, func(o *options) { o.retryMaxAge = time.Second })
	s.putProfile(t, nil)
	in := invoice()
	in["send_at"] = time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	id := s.accept(t, in)
	done := s.waitStatus(t, id, "sent")
	if a := attempts(done); len(a) != 2 || a[0]["smtp_code"] != float64(451) {
		t.Fatalf("attempts: %v", a)
	}
}
