package submission

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/delivery"
	"github.com/outbound-mail/outbound/internal/outage"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/validation"
)

// A refusal is the reply to a message the Acceptor did not take, and the
// result it is counted under (outbound_submission_messages_total).
type refusal struct {
	result string
	reply  *smtp.SMTPError
}

// reply builds an SMTP reply; text is cleaned to one line of printable
// ASCII, since it may quote an operator's reason or a header value.
func reply(code int, enhanced smtp.EnhancedCode, text string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: replyText(text)}
}

// maxReplyText keeps a reply line within RFC 5321's 512 octets
// (section 4.5.3.1.5) with room for the codes.
const maxReplyText = 400

func replyText(s string) string {
	b := make([]byte, 0, min(len(s), maxReplyText))
	for i := 0; i < len(s) && len(b) < maxReplyText; i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
			if s[i] == '\r' || s[i] == '\n' || s[i] == '\t' {
				c = ' '
			}
		}
		b = append(b, c)
	}
	return string(b)
}

// A refusalRule answers the refusal for an error of the kind it knows, or
// false.
type refusalRule func(error) (refusal, bool)

func is(target error, result string, code int, enhanced smtp.EnhancedCode, text string) refusalRule {
	return func(err error) (refusal, bool) {
		if errors.Is(err, target) {
			return refusal{result, reply(code, enhanced, text)}, true
		}
		return refusal{}, false
	}
}

func as[T error](answer func(T) refusal) refusalRule {
	return func(err error) (refusal, bool) {
		var t T
		if errors.As(err, &t) {
			return answer(t), true
		}
		return refusal{}, false
	}
}

// refusalRules is the one table from the Acceptor's errors to SMTP
// replies (enhanced codes from RFC 3463), tried in order. 4xx means "try
// again later" and a client keeps the message; 5xx means this message
// will never be taken as it is. Whatever is not known here is a 451: a
// message is never lost to an error nobody classified.
var refusalRules = []refusalRule{
	as(func(d *ratelimit.DeniedError) refusal {
		secs := max(1, ratelimit.Seconds(d.Result.RetryAfter))
		return refusal{"rate_limited", reply(451, smtp.EnhancedCode{4, 7, 0}, fmt.Sprintf(
			"Rate limit: the tenant may send %d recipients in this window; try again in %d seconds", d.Result.Limit, secs))}
	}),
	as(func(p *tenant.PausedError) refusal {
		return refusal{"paused", reply(451, smtp.EnhancedCode{4, 7, 0}, "Sending is paused for this tenant: "+p.Reason)}
	}),
	as(validationRefusal),
	as(func(e *delivery.FromMismatchError) refusal {
		return refusal{"from_mismatch", reply(550, smtp.EnhancedCode{5, 7, 1},
			"From is not the tenant's account address: the account sends as "+e.Account)}
	}),
	// Nothing is wrong with the message: the tenant has not connected an
	// account and the operator runs no default relay. Either can be fixed,
	// so a client that queues (an MTA) should keep the message and retry.
	is(delivery.ErrNoRoute, "no_route", 451, smtp.EnhancedCode{4, 3, 5},
		"This tenant has no enabled SMTP account and no default relay is configured"),
	is(outage.ErrUnavailable, "unavailable", 451, smtp.EnhancedCode{4, 3, 0},
		"Storage is unavailable; try again shortly"),
	is(queue.ErrIdempotencyKeyReused, "idempotency_reused", 550, smtp.EnhancedCode{5, 6, 0},
		"This message's idempotency key (its Message-ID) was first used for a different message"),
}

// errUnknown is the reply to an error no rule knows.
var errUnknown = refusal{"error", reply(451, smtp.EnhancedCode{4, 3, 0}, "Internal error; try again later")}

// refuse maps err through refusalRules.
func refuse(err error) refusal {
	for _, r := range refusalRules {
		if ref, ok := r(err); ok {
			return ref
		}
	}
	return errUnknown
}

// validationRefusal answers a message the Acceptor found malformed. A
// count or size over a limit keeps its own code; any other field quotes
// the fields' messages.
func validationRefusal(v *validation.Error) refusal {
	for _, f := range v.Fields {
		switch f.Code {
		case "too_many_recipients":
			return refusal{"too_many_recipients", reply(452, smtp.EnhancedCode{4, 5, 3}, "Too many recipients: "+f.Message)}
		case "too_large":
			return refusal{"too_large", reply(552, smtp.EnhancedCode{5, 3, 4}, "Message too large: "+f.Message)}
		}
	}
	parts := make([]string, 0, len(v.Fields))
	for _, f := range v.Fields {
		parts = append(parts, f.Field+": "+f.Message)
	}
	return refusal{"invalid", reply(550, smtp.EnhancedCode{5, 6, 0}, "Message refused: "+strings.Join(parts, "; "))}
}

// accepted is the reply to a queued message (or a replay of one): go-smtp
// writes a Data error's code and text as they are, and this is how the
// 250 carries the message id a sender can look up in the API.
func accepted(id string) *smtp.SMTPError {
	return reply(250, smtp.EnhancedCode{2, 0, 0}, "OK queued as "+id)
}

// Replies of this package's own, outside the Acceptor's table.
var (
	errShuttingDown = reply(421, smtp.EnhancedCode{4, 3, 2}, "Service shutting down; try again shortly")
	// errReadFailed answers a message whose bytes stopped coming (a
	// timeout, most often), should the client still be there to read it.
	errReadFailed = reply(451, smtp.EnhancedCode{4, 4, 2}, "The message was not received in full; nothing was queued")
)

func lineTooLong(limit int) refusal {
	return refusal{"invalid", reply(550, smtp.EnhancedCode{5, 6, 0},
		"Message refused: a line is longer than "+strconv.Itoa(limit)+" bytes (RFC 5322 allows 998)")}
}

func headerTooLarge(limit int) refusal {
	return refusal{"too_large", reply(552, smtp.EnhancedCode{5, 3, 4}, "Header section over "+strconv.Itoa(limit)+" bytes")}
}

var tooLarge = refusal{"too_large", smtp.ErrDataTooLarge}
