package delivery

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/transport"
)

// TestDecide checks each rule of decide on facts built by hand: a fixed
// clock, a one-minute backoff base, a day's retry window, an hour's quota
// hold, and a jitter of 0.5, which gives the backoff exactly (one minute,
// doubled per attempt).
func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	pol := policy{retryBase: time.Minute, retryMaxAge: 24 * time.Hour, quotaHold: time.Hour, relay: true}
	windowEnd := now.Add(-time.Hour).Add(pol.retryMaxAge) // of a message accepted an hour ago

	// rec is a message accepted an hour ago to a@x, b@x and c@x, after
	// the given attempts.
	rec := func(attempts int) queue.Record {
		r := queue.Record{ID: "m1", TenantID: "acme", Route: RouteTenant, CreatedAt: now.Add(-time.Hour)}
		for range attempts {
			r.Attempts = append(r.Attempts, queue.Attempt{Route: RouteTenant, Error: transport.CodeRejected, SMTPCode: 451})
		}
		return r
	}
	all := []string{"a@x", "b@x", "c@x"}
	// tried is a first attempt on the tenant's route (fallback_to_default
	// set) that ended with res and terr.
	tried := func(r queue.Record, res transport.Result, terr *transport.Error) facts {
		return facts{record: r, route: RouteTenant, fallback: true, all: all, rcpts: all, jitter: 0.5,
			attempts: append(r.Attempts, queue.Attempt{Route: RouteTenant}), result: res, err: terr}
	}
	// stopped is a message on the tenant's route kept from its send.
	stopped := func(r queue.Record, why stop) facts {
		return facts{record: r, route: RouteTenant, fallback: true, stop: why, all: all, rcpts: all, jitter: 0.5,
			attempts: r.Attempts}
	}

	authFailed := &transport.Error{Code: transport.CodeAuthFailed, Stage: transport.StageAuth, SMTPCode: 535,
		EnhancedCode: "5.7.8", Message: "Username and Password not accepted"}
	connectFailed := &transport.Error{Code: transport.CodeConnectFailed, Stage: transport.StageConnect,
		Message: "connection refused"}
	certUntrusted := &transport.Error{Code: transport.CodeTLSFailed, Stage: transport.StageTLS, Message: "unknown authority"}
	greylisted := &transport.Error{Code: transport.CodeRejected, Stage: transport.StageRcpt, SMTPCode: 451,
		EnhancedCode: "4.7.1", Message: "try again later"}
	ambiguous := &transport.Error{Code: transport.CodeTimeout, Stage: transport.StageData, Ambiguous: true,
		Message: "no reply to the final dot"}
	refused := &transport.Error{Code: transport.CodeRejected, Stage: transport.StageData, SMTPCode: 554,
		EnhancedCode: "5.7.1", Message: "message refused"}
	quota := &transport.Error{Code: transport.CodeRejected, Stage: transport.StageMail, SMTPCode: 550,
		EnhancedCode: "5.4.5", Message: "Daily user sending quota exceeded"}
	later := transport.Rejection{Email: "b@x", SMTPCode: 450, EnhancedCode: "4.2.0", Message: "mailbox busy"}
	gone := transport.Rejection{Email: "c@x", SMTPCode: 550, EnhancedCode: "5.1.1", Message: "no such user"}
	// an earlier attempt sent to a@x, refused c@x and left b@x waiting.
	partly := func(r queue.Record) queue.Record {
		r.Recipients = []queue.Recipient{{Email: "a@x", Status: queue.RecipientSent, SMTPCode: 250},
			recipient(later, queue.RecipientDeferred), recipient(gone, queue.RecipientFailed)}
		r.Rejected = []queue.Rejection{queue.Rejection(gone)}
		return r
	}

	type want struct {
		fallBack  bool
		status    queue.Status
		retryIn   time.Duration
		hold      bool
		expired   bool
		errHas    string // "" wants no error
		event     string
		attempts  int                     // in the outcome
		rcpts     []queue.RecipientStatus // of the outcome's recipients, in order; nil: not checked
		keepsRcpt bool                    // the outcome carries the record's recipients and rejections unchanged
	}
	cases := []struct {
		name    string
		f       facts
		want    want
		noRelay bool // no default relay is configured
	}{
		// Before any send.
		{name: "an unreadable stored request fails at once", f: with(stopped(rec(0), stopUnreadable), func(f *facts) { f.detail = "bad json" }),
			want: want{status: queue.StatusFailed, errHas: "stored request is unreadable: bad json", event: "message.failed"}},
		{name: "no route fails at once", f: stopped(rec(0), stopNoRoute),
			want: want{status: queue.StatusFailed, errHas: "no_route", event: "message.failed"}},
		{name: "storage trouble defers by the backoff base, no attempt spent", f: stopped(rec(2), stopStorage),
			want: want{status: queue.StatusDeferred, retryIn: time.Minute, event: "message.deferred", attempts: 2}},
		{name: "a paused tenant's message waits an hour held for the tenant, no event", f: stopped(rec(0), stopPaused),
			want: want{status: queue.StatusQueued, retryIn: pausedRecheck, hold: true}},
		{name: "a paused message is not expired however old", f: stopped(with(rec(0), func(r *queue.Record) {
			r.CreatedAt = now.Add(-30 * 24 * time.Hour)
		}), stopPaused),
			want: want{status: queue.StatusQueued, retryIn: pausedRecheck, hold: true}},
		{name: "every recipient suppressed makes it suppressed", f: with(stopped(rec(0), stopNoRecipients), func(f *facts) {
			f.rcpts, f.suppressed = nil, []queue.Suppression{{Email: "a@x"}, {Email: "b@x"}, {Email: "c@x"}}
		}),
			want: want{status: queue.StatusSuppressed, errHas: "suppression list", event: "message.suppressed",
				rcpts: []queue.RecipientStatus{"suppressed", "suppressed", "suppressed"}}},
		{name: "the rest suppressed after some were sent makes it sent", f: with(stopped(partly(rec(1)), stopNoRecipients), func(f *facts) {
			f.rcpts, f.suppressed = nil, []queue.Suppression{{Email: "b@x"}}
		}),
			want: want{status: queue.StatusSent, event: "message.sent", attempts: 1,
				rcpts: []queue.RecipientStatus{"sent", "suppressed", "failed"}}},
		{name: "a quota hold defers until it ends, no attempt spent", f: with(stopped(partly(rec(1)), stopHeld), func(f *facts) {
			f.until = now.Add(40 * time.Minute)
		}),
			want: want{status: queue.StatusDeferred, retryIn: 40 * time.Minute, hold: true, event: "message.deferred", attempts: 1, keepsRcpt: true}},
		{name: "the default relay's quota hold defers without holding for the tenant", f: with(stopped(rec(1), stopHeld), func(f *facts) {
			f.route, f.until = RouteDefault, now.Add(40*time.Minute)
		}),
			want: want{status: queue.StatusDeferred, retryIn: 40 * time.Minute, event: "message.deferred", attempts: 1}},
		{name: "an account the tenant no longer names puts the message back due now, no attempt spent",
			f:    stopped(partly(rec(1)), stopAccountChanged),
			want: want{status: queue.StatusQueued, attempts: 1, keepsRcpt: true}},
		{name: "a quota hold is waited out even past the retry window", f: with(stopped(rec(1), stopHeld), func(f *facts) {
			f.until = windowEnd.Add(time.Hour)
		}),
			want: want{status: queue.StatusDeferred, retryIn: windowEnd.Add(time.Hour).Sub(now), hold: true, event: "message.deferred", attempts: 1}},
		{name: "a paced account puts the message back for its wait, no event", f: with(stopped(rec(1), stopPaced), func(f *facts) {
			f.wait = 3 * time.Second
		}),
			want: want{status: queue.StatusQueued, retryIn: 3 * time.Second, attempts: 1}},
		{name: "a busy account puts the message back for its line's wait with the attempts made",
			f: with(stopped(partly(rec(1)), stopBusy), func(f *facts) {
				f.wait, f.attempts = 2*time.Second, append(f.attempts, queue.Attempt{Error: transport.CodeAuthFailed})
			}),
			want: want{status: queue.StatusQueued, retryIn: 2 * time.Second, attempts: 2, keepsRcpt: true}},

		// An open circuit.
		{name: "an open circuit defers until it lets a connection through, held for the tenant",
			f: with(stopped(partly(rec(1)), stopCircuit), func(f *facts) { f.until = now.Add(5 * time.Minute) }),
			want: want{status: queue.StatusDeferred, retryIn: 5 * time.Minute, hold: true, event: "message.deferred", attempts: 1,
				keepsRcpt: true}},
		{name: "the default relay's open circuit defers without a hold",
			f:    with(stopped(rec(1), stopCircuit), func(f *facts) { f.route, f.until = RouteDefault, now.Add(5*time.Minute) }),
			want: want{status: queue.StatusDeferred, retryIn: 5 * time.Minute, event: "message.deferred", attempts: 1}},
		{name: "a circuit that opens as the window ends still defers",
			f:    with(stopped(rec(1), stopCircuit), func(f *facts) { f.until = windowEnd }),
			want: want{status: queue.StatusDeferred, retryIn: windowEnd.Sub(now), hold: true, event: "message.deferred", attempts: 1}},
		{name: "a circuit open past the window falls back to the default relay",
			f:    with(stopped(rec(1), stopCircuit), func(f *facts) { f.until = windowEnd.Add(time.Nanosecond) }),
			want: want{fallBack: true}},
		{name: "a circuit open past the window fails the message without fallback_to_default",
			f: with(stopped(rec(1), stopCircuit), func(f *facts) { f.fallback, f.until = false, windowEnd.Add(time.Nanosecond) }),
			want: want{status: queue.StatusFailed, expired: true, errHas: "retry window of 24h0m0s spent while the account did not answer (circuit_open)",
				event: "message.failed", attempts: 1}},
		{name: "a circuit open past the window on the default relay fails the message",
			f:    with(stopped(rec(1), stopCircuit), func(f *facts) { f.route, f.until = RouteDefault, windowEnd.Add(time.Hour) }),
			want: want{status: queue.StatusFailed, expired: true, errHas: "circuit_open", event: "message.failed", attempts: 1}},
		{name: "a circuit outlasting the window leaves those sent to sent and fails the waiting ones",
			f: with(stopped(partly(rec(1)), stopCircuit), func(f *facts) { f.fallback, f.until = false, windowEnd.Add(time.Hour) }),
			want: want{status: queue.StatusSent, expired: true, event: "message.sent", attempts: 1,
				rcpts: []queue.RecipientStatus{"sent", "failed", "failed"}}},

		// After an attempt.
		{name: "a success sends to every recipient", f: tried(rec(0), transport.Result{Reply: "2.0.0 OK"}, nil),
			want: want{status: queue.StatusSent, event: "message.sent", attempts: 1,
				rcpts: []queue.RecipientStatus{"sent", "sent", "sent"}}},
		{name: "a success past the retry window is still sent", f: tried(with(rec(0), func(r *queue.Record) {
			r.CreatedAt = now.Add(-48 * time.Hour)
		}), transport.Result{}, nil),
			want: want{status: queue.StatusSent, event: "message.sent", attempts: 1, rcpts: []queue.RecipientStatus{"sent", "sent", "sent"}}},
		{name: "a 4xx defers by the backoff for the first retry", f: tried(rec(0), transport.Result{}, greylisted),
			want: want{status: queue.StatusDeferred, retryIn: time.Minute, event: "message.deferred", attempts: 1,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}},
		{name: "the backoff doubles with each attempt in the record", f: tried(rec(3), transport.Result{}, greylisted),
			want: want{status: queue.StatusDeferred, retryIn: 8 * time.Minute, event: "message.deferred", attempts: 4,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}},
		{name: "the backoff counts a delivery that fell back as one attempt", f: with(tried(rec(2), transport.Result{}, greylisted),
			func(f *facts) {
				f.route, f.attempts = RouteDefault, append(f.attempts, queue.Attempt{Route: RouteDefault})
			}),
			want: want{status: queue.StatusDeferred, retryIn: 4 * time.Minute, event: "message.deferred", attempts: 4,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}},
		{name: "a retry due exactly as the window ends is still made", f: tried(with(rec(0), func(r *queue.Record) {
			r.CreatedAt = now.Add(time.Minute - pol.retryMaxAge)
		}), transport.Result{}, greylisted),
			want: want{status: queue.StatusDeferred, retryIn: time.Minute, event: "message.deferred", attempts: 1,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}},
		{name: "a retry due a moment after the window ends fails the message", f: tried(with(rec(0), func(r *queue.Record) {
			r.CreatedAt = now.Add(time.Minute - pol.retryMaxAge - time.Nanosecond)
		}), transport.Result{}, greylisted),
			want: want{status: queue.StatusFailed, expired: true, event: "message.failed", attempts: 1,
				errHas: "retry window of 24h0m0s spent; last error: rejected: 451 4.7.1: try again later",
				rcpts:  []queue.RecipientStatus{"failed", "failed", "failed"}}},
		{name: "scheduled mail's window starts at its send time", f: tried(with(rec(0), func(r *queue.Record) {
			r.CreatedAt, r.SendAt = now.Add(-20*24*time.Hour), now.Add(-time.Hour)
		}), transport.Result{}, greylisted),
			want: want{status: queue.StatusDeferred, retryIn: time.Minute, event: "message.deferred", attempts: 1,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}},
		{name: "scheduled mail's window starts when it first fell due", f: tried(with(rec(0), func(r *queue.Record) {
			r.CreatedAt, r.SendAt, r.DueAt = now.Add(-20*24*time.Hour), now.Add(-20*24*time.Hour), now.Add(-time.Hour)
		}), transport.Result{}, greylisted),
			want: want{status: queue.StatusDeferred, retryIn: time.Minute, event: "message.deferred", attempts: 1,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}},
		{name: "scheduled mail past its window from the send time fails", f: tried(with(rec(0), func(r *queue.Record) {
			r.CreatedAt, r.SendAt = now.Add(-30*24*time.Hour), now.Add(-25*time.Hour)
		}), transport.Result{}, greylisted),
			want: want{status: queue.StatusFailed, expired: true, errHas: "retry window", event: "message.failed", attempts: 1,
				rcpts: []queue.RecipientStatus{"failed", "failed", "failed"}}},
		{name: "an ambiguous timeout after the final dot is retried, not held", f: tried(rec(0), transport.Result{}, ambiguous),
			want: want{status: queue.StatusDeferred, retryIn: time.Minute, event: "message.deferred", attempts: 1,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}},
		// Today's rule: a timeout counts as unreachable whatever its
		// stage, so at the window's end even an ambiguous one falls back
		// (and the relay may deliver a second copy).
		{name: "an ambiguous timeout at the window's end falls back", f: tried(with(rec(0), func(r *queue.Record) {
			r.CreatedAt = now.Add(-pol.retryMaxAge)
		}), transport.Result{}, ambiguous),
			want: want{fallBack: true}},
		{name: "an ambiguous timeout at the window's end without fallback fails", f: with(tried(with(rec(0), func(r *queue.Record) {
			r.CreatedAt = now.Add(-pol.retryMaxAge)
		}), transport.Result{}, ambiguous), func(f *facts) { f.fallback = false }),
			want: want{status: queue.StatusFailed, expired: true, errHas: "last error: timeout: no reply to the final dot",
				event: "message.failed", attempts: 1, rcpts: []queue.RecipientStatus{"failed", "failed", "failed"}}},
		{name: "a 5xx fails the message at once", f: tried(rec(0), transport.Result{}, refused),
			want: want{status: queue.StatusFailed, errHas: "rejected: 554 5.7.1: message refused", event: "message.failed", attempts: 1,
				rcpts: []queue.RecipientStatus{"failed", "failed", "failed"}}},
		{name: "a 5xx past the window fails as the server said, not as expired", f: tried(with(rec(0), func(r *queue.Record) {
			r.CreatedAt = now.Add(-48 * time.Hour)
		}), transport.Result{}, refused),
			want: want{status: queue.StatusFailed, errHas: "rejected: 554", event: "message.failed", attempts: 1,
				rcpts: []queue.RecipientStatus{"failed", "failed", "failed"}}},
		{name: "every recipient refused for good fails the message", f: tried(rec(0),
			transport.Result{Rejected: []transport.Rejection{gone}}, &transport.Error{Code: transport.CodeRejected,
				Stage: transport.StageRcpt, SMTPCode: 550, EnhancedCode: "5.1.1", Message: "no such user"}),
			want: want{status: queue.StatusFailed, errHas: "550 5.1.1", event: "message.failed", attempts: 1,
				rcpts: []queue.RecipientStatus{"failed", "failed", "failed"}}},
		{name: "a sending-quota reply defers for the quota hold, not the backoff, held for the tenant", f: tried(rec(0), transport.Result{}, quota),
			want: want{status: queue.StatusDeferred, retryIn: time.Hour, hold: true, event: "message.deferred", attempts: 1,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}},
		{name: "a sending-quota hold past the window fails the message", f: tried(with(rec(0), func(r *queue.Record) {
			r.CreatedAt = now.Add(30*time.Minute - pol.retryMaxAge)
		}), transport.Result{}, quota),
			want: want{status: queue.StatusFailed, expired: true, errHas: "last error: rejected: 550 5.4.5", event: "message.failed",
				attempts: 1, rcpts: []queue.RecipientStatus{"failed", "failed", "failed"}}},
		{name: "a refused login falls back to the default relay", f: tried(rec(0), transport.Result{}, authFailed),
			want: want{fallBack: true}},
		{name: "a refused login without fallback_to_default is held for the tenant", f: with(tried(rec(0), transport.Result{}, authFailed),
			func(f *facts) { f.fallback = false }),
			want: want{status: queue.StatusDeferred, retryIn: time.Minute, hold: true, event: "message.deferred", attempts: 1,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}},
		{name: "a refused login does not fall back without a default relay", f: tried(rec(0), transport.Result{}, authFailed),
			want: want{status: queue.StatusDeferred, retryIn: time.Minute, hold: true, event: "message.deferred", attempts: 1,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}, noRelay: true},
		{name: "the default relay's refused login defers without a hold or another fallback", f: with(tried(rec(0), transport.Result{}, authFailed),
			func(f *facts) { f.route = RouteDefault }),
			want: want{status: queue.StatusDeferred, retryIn: time.Minute, event: "message.deferred", attempts: 1,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}},
		{name: "an unreachable account within the window is held for the tenant, no fallback", f: tried(rec(0), transport.Result{}, connectFailed),
			want: want{status: queue.StatusDeferred, retryIn: time.Minute, hold: true, event: "message.deferred", attempts: 1,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}},
		{name: "an account unreachable until the window's end falls back", f: tried(with(rec(0), func(r *queue.Record) {
			r.CreatedAt = now.Add(-pol.retryMaxAge)
		}), transport.Result{}, connectFailed),
			want: want{fallBack: true}},
		{name: "an account unreachable until the window's end fails without fallback", f: with(tried(with(rec(0), func(r *queue.Record) {
			r.CreatedAt = now.Add(-pol.retryMaxAge)
		}), transport.Result{}, connectFailed), func(f *facts) { f.fallback = false }),
			want: want{status: queue.StatusFailed, expired: true, errHas: "last error: connect_failed: connection refused",
				event: "message.failed", attempts: 1, rcpts: []queue.RecipientStatus{"failed", "failed", "failed"}}},
		{name: "an untrusted certificate is the profile's fault: held, not failed, though permanent",
			f: tried(rec(0), transport.Result{}, certUntrusted),
			want: want{status: queue.StatusDeferred, retryIn: time.Minute, hold: true, event: "message.deferred", attempts: 1,
				rcpts: []queue.RecipientStatus{"deferred", "deferred", "deferred"}}},

		// Per-recipient outcomes.
		{name: "recipients refused for now keep a sent message deferred, the others sent or failed",
			f: tried(rec(0), transport.Result{Deferred: []transport.Rejection{later}, Rejected: []transport.Rejection{gone}}, nil),
			want: want{status: queue.StatusDeferred, retryIn: time.Minute, event: "message.deferred", attempts: 1,
				rcpts: []queue.RecipientStatus{"sent", "deferred", "failed"}}},
		{name: "the last waiting recipient sent on a retry makes it sent", f: with(tried(partly(rec(1)), transport.Result{Reply: "OK"}, nil),
			func(f *facts) { f.rcpts = []string{"b@x"} }),
			want: want{status: queue.StatusSent, event: "message.sent", attempts: 2, rcpts: []queue.RecipientStatus{"sent", "sent", "failed"}}},
		{name: "the last waiting recipient refused for now past the window leaves the message sent",
			f: with(tried(with(partly(rec(1)), func(r *queue.Record) { r.CreatedAt = now.Add(-pol.retryMaxAge) }),
				transport.Result{Deferred: []transport.Rejection{later}}, &transport.Error{Code: transport.CodeRejected,
					Stage: transport.StageRcpt, SMTPCode: 450, EnhancedCode: "4.2.0", Message: "mailbox busy"}),
				func(f *facts) { f.rcpts = []string{"b@x"} }),
			want: want{status: queue.StatusSent, expired: true, event: "message.sent", attempts: 2,
				rcpts: []queue.RecipientStatus{"sent", "failed", "failed"}}},
		{name: "the last waiting recipient refused for good leaves the message sent",
			f: with(tried(partly(rec(1)), transport.Result{Rejected: []transport.Rejection{{Email: "b@x", SMTPCode: 550,
				EnhancedCode: "5.1.1"}}}, &transport.Error{Code: transport.CodeRejected, Stage: transport.StageRcpt, SMTPCode: 550,
				EnhancedCode: "5.1.1"}), func(f *facts) { f.rcpts = []string{"b@x"} }),
			want: want{status: queue.StatusSent, event: "message.sent", attempts: 2, rcpts: []queue.RecipientStatus{"sent", "failed", "failed"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pol
			p.relay = !tc.noRelay
			v := decide(now, p, tc.f)
			w := tc.want
			if v.fallBack != w.fallBack {
				t.Fatalf("fallBack = %v, want %v", v.fallBack, w.fallBack)
			}
			if w.fallBack {
				if !reflect.DeepEqual(v, verdict{fallBack: true}) {
					t.Errorf("a fallback verdict carries an outcome: %+v", v)
				}
				return
			}
			out := v.out
			if out.Status != w.status || out.RetryIn != w.retryIn || out.HoldForTenant != w.hold || v.expired != w.expired {
				t.Errorf("status %s retry in %v hold %v expired %v, want %s %v %v %v", out.Status, out.RetryIn,
					out.HoldForTenant, v.expired, w.status, w.retryIn, w.hold, w.expired)
			}
			if w.errHas == "" && out.Error != "" || !strings.Contains(out.Error, w.errHas) {
				t.Errorf("error %q, want one with %q", out.Error, w.errHas)
			}
			if event := eventOf(out.Status); event != w.event {
				t.Errorf("event %q, want %q", event, w.event)
			}
			if out.Route != tc.f.route {
				t.Errorf("route %q, want %q", out.Route, tc.f.route)
			}
			if len(out.Attempts) != w.attempts {
				t.Errorf("%d attempts, want %d", len(out.Attempts), w.attempts)
			}
			if w.rcpts != nil {
				var got []queue.RecipientStatus
				for _, r := range out.Recipients {
					got = append(got, r.Status)
				}
				if !reflect.DeepEqual(got, w.rcpts) {
					t.Errorf("recipients %v, want %v", got, w.rcpts)
				}
			}
			if w.keepsRcpt && (!reflect.DeepEqual(out.Recipients, tc.f.record.Recipients) ||
				!reflect.DeepEqual(out.Rejected, tc.f.record.Rejected)) {
				t.Errorf("recipients %+v rejected %+v, want the record's", out.Recipients, out.Rejected)
			}
		})
	}
}

// with is v changed by change.
func with[T any](v T, change func(*T)) T {
	change(&v)
	return v
}

// TestEventOf checks that an outcome with no attempt makes no webhook
// event and every other names its status, as the queue writes it.
func TestEventOf(t *testing.T) {
	for status, want := range map[queue.Status]string{
		queue.StatusQueued:     "",
		queue.StatusSent:       "message.sent",
		queue.StatusDeferred:   "message.deferred",
		queue.StatusFailed:     "message.failed",
		queue.StatusSuppressed: "message.suppressed",
	} {
		if got := eventOf(status); got != want {
			t.Errorf("eventOf(%s) = %q, want %q", status, got, want)
		}
	}
}

// eventOf is the webhook event an outcome of status makes: none for a
// message put back in the queue without an attempt.
func eventOf(status queue.Status) string {
	event, _ := status.Event()
	return event
}
