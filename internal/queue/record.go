// Package queue is Outbound's durable queue on Redis: a stream per
// partition read by a consumer group, a sorted set of retries per partition,
// and one hash per message holding its request and status. Every key of a
// partition shares a hash tag, so each step is one atomic script even on
// Redis Cluster.
package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

var (
	// ErrNotFound means no record has that id (never existed or expired).
	ErrNotFound = errors.New("queue: no such message")
	// ErrIdempotencyKeyReused means the key was first used with a
	// different request.
	ErrIdempotencyKeyReused = errors.New("queue: idempotency key reused with a different request")
)

// Attempt is one try at delivering, as recorded in the status.
type Attempt struct {
	At           time.Time `json:"at"`
	Route        string    `json:"route"`
	SMTPCode     int       `json:"smtp_code,omitempty"`
	EnhancedCode string    `json:"enhanced_code,omitempty"`
	Message      string    `json:"message,omitempty"`
	// Error is a code (transport codes such as auth_failed) when the
	// attempt did not succeed, "" when it did.
	Error string `json:"error,omitempty"`
	// Ambiguous marks a connection lost after the final dot: the server
	// may have taken the message, and the retry may duplicate it.
	Ambiguous bool `json:"ambiguous,omitempty"`
}

// Rejection is a recipient the server refused for good.
type Rejection struct {
	Email        string `json:"email"`
	SMTPCode     int    `json:"smtp_code"`
	EnhancedCode string `json:"enhanced_code,omitempty"`
	Message      string `json:"message"`
}

// Recipient is one envelope recipient's state and the server's last
// reply about it.
type Recipient struct {
	Email        string          `json:"email"`
	Status       RecipientStatus `json:"status"`
	SMTPCode     int             `json:"smtp_code,omitempty"`
	EnhancedCode string          `json:"enhanced_code,omitempty"`
	Message      string          `json:"message,omitempty"`
}

// Final reports whether the recipient is done with: sent, failed or
// suppressed, never to be tried again.
func (r Recipient) Final() bool { return r.Status != RecipientDeferred }

// Suppression is a recipient skipped because it is on the tenant's
// suppression list.
type Suppression struct {
	Email  string `json:"email"`
	Reason string `json:"reason"`
}

// Record is a message's stored state.
type Record struct {
	ID            string
	TenantID      string
	Status        Status
	Route         string
	MessageID     string // the RFC 5322 Message-ID, kept across retries
	CreatedAt     time.Time
	UpdatedAt     time.Time
	SentAt        time.Time // zero until sent
	NextAttemptAt time.Time // zero unless deferred
	Attempts      []Attempt
	Rejected      []Rejection
	Suppressed    []Suppression
	// Recipients is each envelope recipient's state, once an attempt
	// was made: a retry goes only to those still deferred.
	Recipients []Recipient
	SendAt     time.Time // zero unless scheduled
	DueAt      time.Time // when a scheduled message was first moved to the stream (see FirstDue)
	Error      string    // why it failed, when it did
	Payload    []byte    // the request as accepted; dropped once final
	Kind       string    // how Payload is read (NewMessage.Kind); "" for the request's JSON
}

// FirstDue is when the message first fell due, where its retry window
// starts: when the mover first moved it (scheduled mail), else its send_at
// (a record from before due_at was written), else its accept.
func (r Record) FirstDue() time.Time {
	switch {
	case !r.DueAt.IsZero():
		return r.DueAt
	case !r.SendAt.IsZero():
		return r.SendAt
	}
	return r.CreatedAt
}

// maxAttempts bounds the history kept per message.
const maxAttempts = 50

// newID makes a message id that names its partition: a ULID (time
// ordered, 80 random bits) and the partition number.
func newID(partition int) string {
	return ulid.Make().String() + "-" + strconv.Itoa(partition)
}

// partitionOf reads the partition back out of an id.
func partitionOf(id string) (int, bool) {
	u, p, ok := strings.Cut(id, "-")
	if !ok || len(u) != ulid.EncodedSize {
		return 0, false
	}
	if _, err := ulid.ParseStrict(u); err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || strconv.Itoa(n) != p {
		return 0, false
	}
	return n, true
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func parseMS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// decodeRecord reads a record from its hash fields.
func decodeRecord(id string, h map[string]string) (Record, error) {
	r := Record{
		ID:            id,
		TenantID:      h["tenant_id"],
		Status:        Status(h["status"]),
		Route:         h["route"],
		MessageID:     h["message_id"],
		CreatedAt:     parseMS(h["created_at"]),
		UpdatedAt:     parseMS(h["updated_at"]),
		SentAt:        parseMS(h["sent_at"]),
		NextAttemptAt: parseMS(h["next_attempt_at"]),
		SendAt:        parseMS(h["send_at"]),
		DueAt:         parseMS(h["due_at"]),
		Error:         h["error"],
		Kind:          h["kind"],
	}
	if p, ok := h["payload"]; ok {
		r.Payload = []byte(p)
	}
	if v := h["attempts"]; v != "" {
		if err := json.Unmarshal([]byte(v), &r.Attempts); err != nil {
			return Record{}, fmt.Errorf("queue: record %s: attempts: %w", id, err)
		}
	}
	if v := h["suppressed"]; v != "" {
		if err := json.Unmarshal([]byte(v), &r.Suppressed); err != nil {
			return Record{}, fmt.Errorf("queue: record %s: suppressed: %w", id, err)
		}
	}
	if v := h["rejected"]; v != "" {
		if err := json.Unmarshal([]byte(v), &r.Rejected); err != nil {
			return Record{}, fmt.Errorf("queue: record %s: rejected: %w", id, err)
		}
	}
	if v := h["recipients"]; v != "" {
		if err := json.Unmarshal([]byte(v), &r.Recipients); err != nil {
			return Record{}, fmt.Errorf("queue: record %s: recipients: %w", id, err)
		}
	}
	return r, nil
}
