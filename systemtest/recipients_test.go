package systemtest

import (
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// recipientStates is a message status's recipients as email → status,
// smtp_code and enhanced_code.
func recipientStates(t *testing.T, m map[string]any) map[string][3]any {
	t.Helper()
	list, _ := m["recipients"].([]any)
	out := map[string][3]any{}
	for _, v := range list {
		r := v.(map[string]any)
		out[r["email"].(string)] = [3]any{r["status"], r["smtp_code"], r["enhanced_code"]}
	}
	return out
}

// A message to ok@ (accepted), later@ (450 on the first try) and gone@
// (550 5.1.1) goes to ok@ at once, in the first transaction; later@ alone
// gets it on the retry, once; gone@ fails and is suppressed. The message is
// deferred in between and sent at the end, the status and the events show
// each recipient, and one session (one login) carries everything, the
// next message too. Pipelined and one command at a time.
func TestPartialRefusalRetriesOnlyTheDeferred(t *testing.T) {
	for _, pipelined := range []bool{true, false} {
		name := "pipelined"
		if !pipelined {
			name = "one-command-at-a-time"
		}
		t.Run(name, func(t *testing.T) {
			var laterTries atomic.Int32
			rcv := newReceiver(t)
			s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Rcpt: func(to string) *smtp.SMTPError {
				switch {
				case to == "later@example.com" && laterTries.Add(1) == 1:
					return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "mailbox busy, try later"}
				case to == "gone@example.com":
					return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
				}
				return nil
			}}}, rcv.trust, func(o *options) { o.noPipelining = !pipelined; o.retryBase = 300 * time.Millisecond })
			s.putProfile(t, nil)
			r := s.do("PUT", "/v1/webhooks/ops", s.adminToken, map[string]any{"url": rcv.srv.URL + "/hook",
				"events": []string{"message.sent", "message.deferred", "message.failed"}})
			if r.status != http.StatusCreated {
				t.Fatalf("webhook: %d %s", r.status, r.body)
			}
			rcv.secret = r.json(t)["secret"].(string)

			in := invoice()
			in["to"] = []map[string]string{{"email": "ok@example.com"}, {"email": "later@example.com"}, {"email": "gone@example.com"}}
			delete(in, "bcc")
			id := s.accept(t, in)

			deferred := rcv.waitEvent(t, id, "message.deferred")["data"].(map[string]any)
			wantFirst := map[string][3]any{
				"ok@example.com":    {"sent", float64(250), nil},
				"later@example.com": {"deferred", float64(450), "4.2.0"},
				"gone@example.com":  {"failed", float64(550), "5.1.1"},
			}
			if got := recipientStates(t, deferred); !reflect.DeepEqual(got, wantFirst) {
				t.Fatalf("deferred event's recipients %v, want %v", got, wantFirst)
			}

			done := s.waitStatus(t, id, "sent")
			want := map[string][3]any{
				"ok@example.com":    {"sent", float64(250), nil},
				"later@example.com": {"sent", float64(250), nil},
				"gone@example.com":  {"failed", float64(550), "5.1.1"},
			}
			if got := recipientStates(t, done); !reflect.DeepEqual(got, want) || done["error"] != nil || len(attempts(done)) != 2 {
				t.Fatalf("final status: recipients %v, want %v: %v", got, want, done)
			}
			if rej, _ := done["rejected_recipients"].([]any); len(rej) != 1 || rej[0].(map[string]any)["email"] != "gone@example.com" {
				t.Fatalf("rejected_recipients %v", done["rejected_recipients"])
			}
			if got := recipientStates(t, rcv.waitEvent(t, id, "message.sent")["data"].(map[string]any)); !reflect.DeepEqual(got, want) {
				t.Fatalf("sent event's recipients %v, want %v", got, want)
			}
			if entry := s.do("GET", "/v1/tenants/acme/suppressions/gone@example.com", s.adminToken, nil).json(t); entry["code"] != "5.1.1" {
				t.Fatalf("gone@ not suppressed: %v", entry)
			}

			// The next message goes on the same session, with no new login.
			in["to"] = []map[string]string{{"email": "ok@example.com"}}
			s.waitStatus(t, s.accept(t, in), "sent")
			msgs := s.account.Messages()
			if len(msgs) != 3 {
				t.Fatalf("server has %d messages, want 3", len(msgs))
			}
			for i, to := range [][]string{{"ok@example.com"}, {"later@example.com"}, {"ok@example.com"}} {
				if !reflect.DeepEqual(msgs[i].To, to) || msgs[i].ConnID != msgs[0].ConnID {
					t.Errorf("message %d went to %v on connection %d, want %v on %d", i, msgs[i].To, msgs[i].ConnID, to, msgs[0].ConnID)
				}
			}
			if s.account.Auths() != 1 || s.account.Connections() != 1 {
				t.Errorf("%d logins on %d connections, want one", s.account.Auths(), s.account.Connections())
			}
		})
	}
}
