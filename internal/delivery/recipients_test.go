package delivery

import (
	"reflect"
	"testing"

	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/transport"
)

// The message's status follows from its recipients' (byRecipients), and a
// retry goes to the deferred ones only (pending).
func TestStatusFollowsRecipients(t *testing.T) {
	all := []string{"a@x", "b@x", "c@x"}
	sent := func(e string) queue.Recipient {
		return queue.Recipient{Email: e, Status: queue.RecipientSent, SMTPCode: 250}
	}
	later := transport.Rejection{Email: "b@x", SMTPCode: 450, EnhancedCode: "4.2.0", Message: "later"}
	gone := transport.Rejection{Email: "c@x", SMTPCode: 550, EnhancedCode: "5.1.1", Message: "gone"}
	for _, tc := range []struct {
		name   string
		had    []queue.Recipient // the record's states
		rcpts  []string          // this attempt's recipients
		res    transport.Result
		terr   *transport.Error
		status queue.Status // as decide classified the attempt
		noAll  bool         // byRecipients is given no recipient list (decideCircuit)
		want   queue.Status
		states []queue.RecipientStatus // of a, b, c
	}{
		{name: "partly sent, one deferred", rcpts: all, res: transport.Result{Deferred: []transport.Rejection{later},
			Rejected: []transport.Rejection{gone}}, status: queue.StatusDeferred, want: queue.StatusDeferred,
			states: []queue.RecipientStatus{"sent", "deferred", "failed"}},
		{name: "the deferred one sent on the retry", had: []queue.Recipient{sent("a@x"), recipient(later, "deferred"),
			recipient(gone, "failed")}, rcpts: []string{"b@x"}, status: queue.StatusSent, want: queue.StatusSent,
			states: []queue.RecipientStatus{"sent", "sent", "failed"}},
		{name: "retry window ran out after some were sent", had: []queue.Recipient{sent("a@x"), recipient(later, "deferred"),
			recipient(gone, "failed")}, rcpts: []string{"b@x"}, res: transport.Result{Deferred: []transport.Rejection{later}},
			terr:   &transport.Error{Code: transport.CodeRejected, Stage: transport.StageRcpt, SMTPCode: 450},
			status: queue.StatusFailed, want: queue.StatusSent, states: []queue.RecipientStatus{"sent", "failed", "failed"}},
		{name: "none sent, the rest failed for good", had: []queue.Recipient{recipient(gone, "failed")},
			rcpts: []string{"a@x", "b@x"}, terr: &transport.Error{Code: transport.CodeRejected, Stage: transport.StageData, SMTPCode: 554},
			status: queue.StatusFailed, want: queue.StatusFailed, states: []queue.RecipientStatus{"failed", "failed", "failed"}},
		{name: "connection lost: every recipient waits", rcpts: all,
			terr: &transport.Error{Code: transport.CodeConnectionLost, Stage: transport.StageMail}, status: queue.StatusDeferred,
			want: queue.StatusDeferred, states: []queue.RecipientStatus{"deferred", "deferred", "deferred"}},
		{name: "the rest suppressed after one was sent", had: []queue.Recipient{sent("a@x"), recipient(later, "deferred"),
			recipient(gone, "failed")}, status: queue.StatusSuppressed, want: queue.StatusSent,
			states: []queue.RecipientStatus{"sent", "suppressed", "failed"}},
		{name: "retry window ran out with no attempt", had: []queue.Recipient{sent("a@x"), recipient(later, "deferred")},
			noAll: true, status: queue.StatusFailed, want: queue.StatusSent, states: []queue.RecipientStatus{"sent", "failed"}},
		{name: "retry window ran out before any attempt", noAll: true, status: queue.StatusFailed, want: queue.StatusFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := queue.Record{Recipients: tc.had}
			var suppressed []queue.Suppression
			if tc.status == queue.StatusSuppressed {
				suppressed = []queue.Suppression{{Email: "b@x", Reason: "unsubscribed"}}
			}
			if got := pending(all, rec); tc.rcpts != nil && !reflect.DeepEqual(got, tc.rcpts) {
				t.Fatalf("pending %v, want %v", got, tc.rcpts)
			}
			out := queue.Outcome{Status: tc.status, Error: "as classified"}
			rcptsOf := all
			if tc.noAll {
				rcptsOf = nil
			}
			byRecipients(&out, rec, rcptsOf, tc.rcpts, suppressed, tc.res, tc.terr)
			var states []queue.RecipientStatus
			for _, r := range out.Recipients {
				states = append(states, r.Status)
			}
			if out.Status != tc.want || !reflect.DeepEqual(states, tc.states) {
				t.Fatalf("status %s, recipients %v; want %s, %v", out.Status, states, tc.want, tc.states)
			}
			if out.Status == queue.StatusSent && out.Error != "" || out.Status == queue.StatusFailed && out.Error == "" {
				t.Errorf("status %s with error %q", out.Status, out.Error)
			}
		})
	}
}
