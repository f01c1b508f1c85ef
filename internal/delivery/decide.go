package delivery

import (
	"strconv"
	"strings"
	"time"

	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/retry"
	"github.com/outbound-mail/outbound/internal/transport"
)

// This file is what becomes of a message after each step of its delivery:
// which status, which wait, whether it is held for its tenant, whether it
// falls back to the default relay, whether its retry window is spent.
// decide reads only its arguments (no Redis, no SMTP, no clock of its
// own), so every rule can be tested with a table; deliver gathers the
// facts, asks decide and does what the verdict says.
//
// It is also mail's retry schedule, whole: which failures retry and after
// how long (the backoff of decideAttempted, the quota hold, the waits for
// a pause, a hold or a circuit), and when the retry window is spent
// (expired). The backoff's curve is retry.Backoff, which webhook
// deliveries share; the base, the window and the quota hold are Config's
// (OUTBOUND_RETRY_BASE, OUTBOUND_RETRY_MAX_AGE, OUTBOUND_QUOTA_HOLD).

// stop is what kept a message from being sent, or attempted when it was
// sent (or tried) on its route.
type stop int

const (
	attempted          stop = iota // the attempts in facts were made
	stopUnreadable                 // the stored request does not decode
	stopNoRoute                    // no enabled profile and no default relay
	stopStorage                    // Redis did not answer while routing or filtering
	stopPaused                     // the tenant's sending is paused
	stopNoRecipients               // every recipient left is suppressed
	stopHeld                       // the account hit its sending quota, held until facts.until
	stopCircuit                    // the account's circuit is open until facts.until
	stopPaced                      // the account's pace lets it send after facts.wait
	stopBusy                       // every session of the account is busy; its line lets it in after facts.wait
	stopAccountChanged             // the tenant's profile changed while the message waited for a session
)

// pausedRecheck is how long a paused tenant's message waits before it is
// looked at again; resuming the tenant wakes it at once (TenantChanged).
const pausedRecheck = time.Hour

// facts is what the decision about one message depends on, as deliver
// found it.
type facts struct {
	record queue.Record // as it was when this delivery began
	route  string       // the route the message is on: RouteTenant, RouteDefault, or the record's when none resolved
	// fallback is set when the message may go via the default relay
	// instead (the profile's fallback_to_default), and cleared once the
	// relay could not be routed to.
	fallback bool
	stop     stop
	detail   string        // stopUnreadable: why
	until    time.Time     // stopHeld, stopCircuit: when the account takes mail again
	wait     time.Duration // stopPaced, stopBusy: how long to wait
	jitter   float64       // in [0, 1), for retry.Backoff; drawn by the caller

	// The recipients: all of the message's, those sent to (those left
	// after earlier attempts and the suppression list) and those the
	// suppression list skipped.
	all, rcpts []string
	suppressed []queue.Suppression

	// attempted and stopBusy: the history with this delivery's attempts
	// last; attempted: the last attempt's result and error.
	attempts []queue.Attempt
	result   transport.Result
	err      *transport.Error
}

// policy is the part of Config the decision reads.
type policy struct {
	retryBase   time.Duration // first backoff, doubled after each attempt
	retryMaxAge time.Duration // the retry window, from the message's first due time
	quotaHold   time.Duration // how long a sending-quota reply holds an account
	relay       bool          // a default relay is configured
}

// verdict is what the decision makes of the facts.
type verdict struct {
	// fallBack says: send via the default relay now, then decide again;
	// out is empty.
	fallBack bool
	out      queue.Outcome // to record: status, wait, hold, error, recipients
	// expired marks an outcome failed because the retry window would end
	// before the next try (recipients an earlier attempt sent to may still
	// make it sent).
	expired bool
}

// decide is what becomes of a message, at now, given the facts.
func decide(now time.Time, p policy, f facts) verdict {
	rec := f.record
	out := queue.Outcome{Route: f.route, Attempts: rec.Attempts}
	switch f.stop {
	case attempted:
		return decideAttempted(now, p, f)
	case stopCircuit:
		return decideCircuit(now, p, f)
	case stopUnreadable:
		out.Status, out.Error = queue.StatusFailed, "stored request is unreadable: "+f.detail
	case stopNoRoute:
		out.Status = queue.StatusFailed
		out.Error = "no_route: the tenant's profile was removed or disabled and no default relay is configured"
	case stopStorage: // try again soon
		out.Status, out.RetryIn = queue.StatusDeferred, p.retryBase
	case stopPaused:
		// Waits, not failed, however long the pause: a paused message is
		// never expired.
		out.Status, out.RetryIn, out.HoldForTenant = queue.StatusQueued, pausedRecheck, true
	case stopNoRecipients:
		// Suppressed, unless earlier attempts sent to some or failed them.
		out.Status, out.Error = queue.StatusSuppressed, "every recipient is on the tenant's suppression list"
		byRecipients(&out, rec, f.all, nil, f.suppressed, transport.Result{}, nil)
	case stopHeld:
		// The account's quota, not the message: wait without spending an
		// attempt, or until the tenant names another account.
		out.Status, out.RetryIn = queue.StatusDeferred, f.until.Sub(now)
		out.Rejected, out.Recipients = rec.Rejected, rec.Recipients
		out.HoldForTenant = f.route == RouteTenant
	case stopPaced:
		// Not this account's turn yet: back in the queue, no attempt spent.
		out.Status, out.RetryIn = queue.StatusQueued, f.wait
	case stopBusy:
		out.Status, out.RetryIn, out.Attempts = queue.StatusQueued, f.wait, f.attempts
		out.Rejected, out.Recipients = rec.Rejected, rec.Recipients
	case stopAccountChanged:
		// Routed to an account the tenant no longer names: back in the
		// queue, due now, to be routed anew; no attempt spent.
		out.Status = queue.StatusQueued
		out.Rejected, out.Recipients = rec.Rejected, rec.Recipients
	}
	return verdict{out: out}
}

// decideCircuit waits for an open circuit to let a connection through,
// without an attempt; when the retry window ends first, the message falls
// back to the default relay where it may, and fails where it may not.
func decideCircuit(now time.Time, p policy, f facts) verdict {
	rec := f.record
	wait := f.until.Sub(now)
	expired := p.expired(rec, now, wait)
	if expired && f.mayFallBack(p) {
		return verdict{fallBack: true}
	}
	out := queue.Outcome{Status: queue.StatusDeferred, Route: f.route, Attempts: rec.Attempts, Rejected: rec.Rejected,
		Recipients: rec.Recipients, RetryIn: wait, HoldForTenant: f.route == RouteTenant}
	if expired {
		out.Status, out.RetryIn, out.HoldForTenant = queue.StatusFailed, 0, false
		out.Error = "retry window of " + p.retryMaxAge.String() + " spent while the account did not answer (" +
			CodeCircuitOpen + ")"
		byRecipients(&out, rec, nil, nil, nil, transport.Result{}, nil) // those an earlier attempt sent to stay sent
	}
	return verdict{out: out, expired: expired}
}

// decideAttempted classifies the last attempt as a whole, then lets each
// recipient's outcome make of it what it does (byRecipients). Recipients
// refused for now make a sent message wait for them as a temporary
// failure would.
func decideAttempted(now time.Time, p policy, f facts) verdict {
	rec := f.record
	// Each delivery counts as one attempt towards the backoff, even when it
	// fell back and tried twice.
	retryIn := retry.Backoff(p.retryBase, len(rec.Attempts)+1, f.jitter)
	terr := f.err
	if terr != nil && f.mayFallBack(p) &&
		(terr.Code == transport.CodeAuthFailed || isUnreachable(terr) && p.expired(rec, now, retryIn)) {
		// The tenant's account refused the login, or stayed unreachable
		// for the whole retry window: send via the platform instead.
		return verdict{fallBack: true}
	}
	out := queue.Outcome{Route: f.route, Attempts: f.attempts, Rejected: rejections(f.result.Rejected)}
	if terr == nil && len(f.result.Deferred) > 0 {
		terr = refusedForNow(f.result.Deferred)
	}
	switch {
	case terr == nil:
		out.Status = queue.StatusSent
	case isQuota(terr):
		// Gmail's "550 5.4.5 Daily user sending quota exceeded" is the
		// account's, not the message's: wait for the window to pass, or
		// for the tenant to name another account.
		out.Status, out.RetryIn = queue.StatusDeferred, p.quotaHold
		out.HoldForTenant = f.route == RouteTenant
	case isProfileFault(terr):
		// A refused login, an untrusted certificate, a host that resolves
		// nowhere: the tenant's configuration, not the message. Defer like
		// Postfix's smtp_sasl_auth_soft_bounce and send once it is fixed.
		out.Status, out.RetryIn = queue.StatusDeferred, retryIn
		out.HoldForTenant = f.route == RouteTenant
	case terr.Permanent():
		out.Status, out.Error = queue.StatusFailed, summary(terr)
	default:
		// 4xx replies, timeouts and lost connections, ambiguous ones
		// after the final dot included: try again.
		out.Status, out.RetryIn = queue.StatusDeferred, retryIn
	}
	expired := out.Status == queue.StatusDeferred && p.expired(rec, now, out.RetryIn)
	if expired {
		out.Status, out.RetryIn, out.HoldForTenant = queue.StatusFailed, 0, false
		out.Error = "retry window of " + p.retryMaxAge.String() + " spent; last error: " + summary(terr)
	}
	byRecipients(&out, rec, f.all, f.rcpts, f.suppressed, f.result, f.err)
	return verdict{out: out, expired: expired}
}

// mayFallBack reports whether a message on f's route may go via the
// default relay when the tenant's account fails it (fallback_to_default).
func (f facts) mayFallBack(p policy) bool {
	return f.route == RouteTenant && f.fallback && p.relay
}

// expired reports whether a retry after delay would fall past the retry
// window, which starts when the message first fell due: scheduled mail
// gets the whole window from its send time, not what is left of it since
// accept. A retry due exactly as the window ends is still made.
func (p policy) expired(rec queue.Record, now time.Time, delay time.Duration) bool {
	return now.Add(delay).After(rec.FirstDue().Add(p.retryMaxAge))
}

// isProfileFault reports failures of the session set-up: the account's
// settings, not the message, are at fault (or the server is unreachable).
func isProfileFault(e *transport.Error) bool {
	switch e.Stage {
	case transport.StageConnect, transport.StageTLS, transport.StageGreet, transport.StageAuth:
		return true
	}
	return false
}

// isUnreachable reports failures that say nothing answered, or stopped
// answering.
func isUnreachable(e *transport.Error) bool {
	switch e.Code {
	case transport.CodeDNSFailed, transport.CodeConnectFailed, transport.CodeTimeout, transport.CodeConnectionLost:
		return true
	}
	return false
}

// isQuota recognises a sending-quota reply (RFC 3463 X.4.5 "system
// congestion" is what Gmail uses for its daily limit).
func isQuota(e *transport.Error) bool {
	if e.SMTPCode == 0 {
		return false
	}
	msg := strings.ToLower(e.Message)
	return strings.HasSuffix(e.EnhancedCode, ".4.5") && (strings.Contains(msg, "quota") || strings.Contains(msg, "limit")) ||
		strings.Contains(msg, "sending quota") || strings.Contains(msg, "daily user sending")
}

// summary is an error as the message's record shows it: code, reply and
// text.
func summary(e *transport.Error) string {
	var b strings.Builder
	b.WriteString(e.Code)
	if e.SMTPCode != 0 {
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(e.SMTPCode))
		if e.EnhancedCode != "" {
			b.WriteString(" " + e.EnhancedCode)
		}
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

func rejections(rs []transport.Rejection) []queue.Rejection {
	if len(rs) == 0 {
		return nil
	}
	out := make([]queue.Rejection, len(rs))
	for i, r := range rs {
		out[i] = queue.Rejection(r)
	}
	return out
}
