package delivery

import (
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/transport"
)

// A message's recipients each have their own outcome, as a relaying MTA
// keeps them (RFC 5321 section 3.3): a recipient the server refuses for
// now waits for the next attempt, which goes to the waiting ones only,
// while the accepted ones have the message at once. The record keeps each
// recipient's state (queue.Recipient), and the message's status follows
// from them (see byRecipients).

// pending is the message's envelope recipients still to be sent to: every
// one on the first attempt, afterwards those earlier attempts left
// deferred. A recipient once skipped as suppressed stays skipped.
func pending(all []string, rec queue.Record) []string {
	if len(rec.Recipients) == 0 && len(rec.Suppressed) == 0 {
		return all
	}
	done := make(map[string]bool, len(rec.Recipients)+len(rec.Suppressed))
	for _, r := range rec.Recipients {
		if r.Final() {
			done[r.Email] = true
		}
	}
	for _, sp := range rec.Suppressed {
		done[sp.Email] = true
	}
	kept := all[:0:0]
	for _, r := range all {
		if !done[r] {
			kept = append(kept, r)
		}
	}
	return kept
}

// byRecipients records what the attempt on rcpts (none when no attempt
// was made) did to each of the message's recipients, all (nil: those the
// record knows), and makes the message's status follow from the
// recipients': deferred while any is deferred; once none is, sent when
// any was sent (error stays empty: the recipients show who failed),
// failed when none was sent and any failed, suppressed when every one was
// skipped. out arrives classified as a whole (decide): when that says
// failed, every recipient left waiting fails with it (its retry window ran
// out, or the server refused the message itself for good).
func byRecipients(out *queue.Outcome, rec queue.Record, all, rcpts []string, suppressed []queue.Suppression,
	res transport.Result, terr *transport.Error) {
	if all == nil {
		for _, r := range rec.Recipients {
			all = append(all, r.Email)
		}
	}
	states := make(map[string]queue.Recipient, len(all))
	for _, r := range rec.Recipients {
		states[r.Email] = r
	}
	for _, sp := range suppressed {
		states[sp.Email] = queue.Recipient{Email: sp.Email, Status: queue.RecipientSuppressed, Message: sp.Reason}
	}
	for _, email := range rcpts {
		r := queue.Recipient{Email: email, Status: queue.RecipientSent, SMTPCode: 250, Message: res.Reply}
		if terr != nil {
			r = queue.Recipient{Email: email, Status: queue.RecipientDeferred, SMTPCode: terr.SMTPCode,
				EnhancedCode: terr.EnhancedCode, Message: terr.Message}
		}
		states[email] = r
	}
	for _, x := range res.Rejected {
		states[x.Email] = recipient(x, queue.RecipientFailed)
	}
	for _, x := range res.Deferred {
		states[x.Email] = recipient(x, queue.RecipientDeferred)
	}

	out.Recipients = make([]queue.Recipient, 0, len(all))
	var deferred, sent, failed int
	for _, email := range all {
		r, ok := states[email]
		if !ok {
			continue
		}
		if r.Status == queue.RecipientDeferred && out.Status == queue.StatusFailed {
			r.Status = queue.RecipientFailed
		}
		out.Recipients = append(out.Recipients, r)
		switch r.Status {
		case queue.RecipientDeferred:
			deferred++
		case queue.RecipientSent:
			sent++
		case queue.RecipientFailed:
			failed++
		}
	}
	out.Rejected = withRejections(rec.Rejected, res.Rejected)
	out.Suppressed = withSuppressions(rec.Suppressed, suppressed)
	switch {
	case deferred > 0:
		// outcome said deferred already: only a deferral leaves any waiting.
	case sent > 0:
		out.Status, out.Error, out.RetryIn, out.HoldForTenant = queue.StatusSent, "", 0, false
	case failed > 0:
		if out.Status != queue.StatusFailed {
			out.Error = "no recipient left to send to: the others failed or are on the tenant's suppression list"
		}
		out.Status, out.RetryIn, out.HoldForTenant = queue.StatusFailed, 0, false
	}
}

// refusedForNow is the error the recipients refused for now make of an
// attempt that otherwise went through: the message waits for them as it
// would for a refusal of the whole message.
func refusedForNow(deferred []transport.Rejection) *transport.Error {
	x := deferred[0]
	return &transport.Error{Code: transport.CodeRejected, Stage: transport.StageRcpt, SMTPCode: x.SMTPCode,
		EnhancedCode: x.EnhancedCode, Message: x.Message}
}

func recipient(x transport.Rejection, status queue.RecipientStatus) queue.Recipient {
	return queue.Recipient{Email: x.Email, Status: status, SMTPCode: x.SMTPCode, EnhancedCode: x.EnhancedCode, Message: x.Message}
}

// withRejections is the record's rejections and the attempt's, each
// recipient once.
func withRejections(had []queue.Rejection, more []transport.Rejection) []queue.Rejection {
	out := had[:len(had):len(had)]
	for _, x := range more {
		if !containsEmail(out, x.Email, func(r queue.Rejection) string { return r.Email }) {
			out = append(out, queue.Rejection(x))
		}
	}
	return out
}

// withSuppressions is the record's skipped recipients and the attempt's,
// each once.
func withSuppressions(had, more []queue.Suppression) []queue.Suppression {
	out := had[:len(had):len(had)]
	for _, sp := range more {
		if !containsEmail(out, sp.Email, func(s queue.Suppression) string { return s.Email }) {
			out = append(out, sp)
		}
	}
	return out
}

func containsEmail[T any](list []T, email string, of func(T) string) bool {
	for _, v := range list {
		if of(v) == email {
			return true
		}
	}
	return false
}
