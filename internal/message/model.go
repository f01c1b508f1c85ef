// Package message models the mail a backend service hands to
// POST /v1/messages: it validates the request (every bad field, with a
// JSON path and a stable code) and composes the RFC 5322 / MIME message a
// delivery worker sends over SMTP.
//
// The request is validated once when it is accepted and composed later,
// possibly on another replica, from the same JSON; Compose re-checks
// everything that could reach a header so that a request that skipped
// Validate still cannot inject one.
package message

import (
	"strings"
	"time"

	"github.com/outbound-mail/outbound/internal/validation"
)

// Address is one mailbox: an optional display name and a bare addr-spec
// (RFC 5322 section 3.4.1, local@domain).
type Address struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
}

// Attachment is one file carried by the message.
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type,omitempty"` // default application/octet-stream
	Content     string `json:"content"`                // standard base64; line breaks tolerated
}

// Request is the body of POST /v1/messages.
type Request struct {
	TenantID    string            `json:"tenant_id"`
	From        *Address          `json:"from,omitempty"`
	To          []Address         `json:"to,omitempty"`
	Cc          []Address         `json:"cc,omitempty"`
	Bcc         []Address         `json:"bcc,omitempty"`
	ReplyTo     []Address         `json:"reply_to,omitempty"`
	Subject     string            `json:"subject"`
	Text        string            `json:"text,omitempty"`
	HTML        string            `json:"html,omitempty"`
	Attachments []Attachment      `json:"attachments,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// SendAt holds the message until then (RFC 3339; at most 30 days ahead).
	SendAt *time.Time `json:"send_at,omitempty"`
}

// Limits bounds one request. Zero fields take the defaults below.
type Limits struct {
	MaxRecipients   int   // to+cc+bcc, default 100 when 0
	MaxMessageBytes int64 // composed size, default 25 MiB (25<<20) when 0
}

// Default limits, used for zero Limits fields.
const (
	defaultMaxRecipients   = 100
	defaultMaxMessageBytes = 25 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxRecipients <= 0 {
		l.MaxRecipients = defaultMaxRecipients
	}
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = defaultMaxMessageBytes
	}
	return l
}

// FieldError names one bad field with a JSON path such as "to[2].email",
// "headers.X-Foo" or "attachments[0].content", a stable machine code
// ("required", "invalid_email", "invalid_characters", "reserved_header",
// "invalid_header_name", "invalid_base64", "too_many_recipients",
// "too_large", "too_long", "too_many", "invalid_content_type",
// "invalid_tenant_id") and a human sentence.
//
// It is the service-wide validation.Field, so the HTTP layer renders
// message and tenant failures through one path.
type FieldError = validation.Field

// ValidationError lists every bad field of a request, not only the first;
// Error() summarises them. It is the service-wide validation.Error.
type ValidationError = validation.Error

// Header is what the delivery route decides, not the caller.
type Header struct {
	From      Address   // the From header (route decides: tenant's own address, or platform no-reply with tenant's display name)
	ReplyTo   []Address // Reply-To header (may be empty)
	MessageID string    // full "<...@domain>" value, stable across retries
	Date      time.Time
}

// recipientKey is how two recipients are compared, the one rule for the
// envelope (Recipients) and the header (headerRecipients): the whole
// address, case-insensitively (Unicode lower case, for SMTPUTF8 addresses
// too). RFC 5321 section 2.4 lets a server treat local parts
// case-sensitively but says doing so "impedes interoperability and is
// discouraged"; the providers mail goes to (Gmail, Outlook, Yahoo, and
// Exchange, Postfix and others by default) fold case, so "Ann@x.com" and
// "ann@x.com" are one mailbox and sending to both would deliver twice. The
// suppression list compares the same way.
func recipientKey(email string) string { return strings.ToLower(email) }

// Recipients returns the envelope recipients (RFC 5321 RCPT TO): the
// to, cc and bcc emails in that order, without empty ones, de-duplicated
// by recipientKey; the first spelling of each is kept.
func (r *Request) Recipients() []string {
	n := len(r.To) + len(r.Cc) + len(r.Bcc)
	out := make([]string, 0, n)
	seen := make(map[string]struct{}, n)
	for _, list := range [...][]Address{r.To, r.Cc, r.Bcc} {
		for _, a := range list {
			if a.Email == "" {
				continue
			}
			key := recipientKey(a.Email)
			if _, dup := seen[key]; dup {
				continue
			}
			seen[key] = struct{}{}
			out = append(out, a.Email)
		}
	}
	return out
}

// headerRecipients returns the To and Cc addresses to write: each address
// once across both, where it first appears (To before Cc) and as first
// spelled, compared by recipientKey. A list without repeats is returned as
// is, without allocating.
func (r *Request) headerRecipients() (to, cc []Address) {
	if len(r.To)+len(r.Cc) < 2 {
		return r.To, r.Cc
	}
	seen := make(map[string]struct{}, len(r.To)+len(r.Cc))
	unique := func(list []Address) []Address {
		out := list[:0:0]
		repeated := false
		for i, a := range list {
			key := recipientKey(a.Email)
			if _, dup := seen[key]; dup {
				if !repeated {
					out, repeated = append(out, list[:i]...), true
				}
				continue
			}
			seen[key] = struct{}{}
			if repeated {
				out = append(out, a)
			}
		}
		if !repeated {
			return list
		}
		return out
	}
	return unique(r.To), unique(r.Cc)
}

// RecipientCount is len(Recipients()): what rate limits count.
func (r *Request) RecipientCount() int {
	return len(r.Recipients())
}
