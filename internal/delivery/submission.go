package delivery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/transport"
)

// Submission is a message handed over by SMTP: the envelope recipients and the message as the client wrote it.
type Submission struct {
	TenantID   string
	Recipients []string // RCPT TO addresses, in order
	Raw        []byte   // header and body, CRLF line ends, without the SMTP dot-stuffing
}

// kindSubmission is the record kind (queue.NewMessage.Kind) of a message
// accepted by AcceptSubmission. Its payload is the envelope, one line of
// JSON (submissionEnvelope) and LF, then the message as it was stored:
// the client's bytes with a Message-ID and a Date where it had none and
// no Bcc field. The route's From and Reply-To are set as it is sent
// (see submitted.render), since the route is decided again then.
const kindSubmission = "submission"

// submissionEnvelope is the stored envelope of a submission.
type submissionEnvelope struct {
	Recipients []string `json:"recipients"`
}

// AcceptSubmission validates sub, routes it and queues it; when it returns nil the message is stored in Redis.
//
// It holds a submission to the rules of Accept: the route (the tenant's
// account or the default relay), the From rule (the From field must be
// the account's address on the tenant's route; on the relay the
// platform's address replaces it when the message is sent, with the
// Reply-To the JSON request would get), the pause, the rate limits (the
// distinct envelope recipients), the recipient and size limits
// (message.Limits), and the header rules of message.ParseSubmission. It
// adds a Message-ID and a Date where the message has none and removes
// any Bcc field, and changes nothing else: the message is sent as
// written. Scheduling is not offered over SMTP.
//
// A message resubmitted with the same Message-ID and the same envelope
// recipients within the idempotency window is a replay: the answer is
// the first message's id (Accepted.Replayed) and nothing new is queued;
// the same Message-ID and recipients with other bytes is
// queue.ErrIdempotencyKeyReused. A message without a Message-ID gets one
// and has no such protection: nothing tells its retry from a new message.
func (s *Service) AcceptSubmission(ctx context.Context, sub Submission) (Accepted, error) {
	m, err := message.ParseSubmission(sub.TenantID, sub.Recipients, sub.Raw, s.cfg.Limits)
	if err != nil {
		return Accepted{}, err
	}
	from := routing(sub.TenantID, m.Raw)
	r, err := s.resolve(ctx, from, false)
	if err != nil {
		return Accepted{}, err
	}
	if err := r.admits(from); err != nil {
		return Accepted{}, err
	}
	cost := len(m.Recipients)
	lim, err := r.affords("recipients", cost)
	if err != nil {
		return Accepted{}, err
	}
	id := m.MessageID
	var key, hash string
	if id != "" {
		// The key's request hash is of the bytes as the client sent them:
		// the same Message-ID with other content is a different message.
		key = submissionKey(id, m.Recipients)
		sum := sha256.Sum256(sub.Raw)
		hash = hex.EncodeToString(sum[:])
	} else {
		// Nothing tells a client's retry of this message from a new one:
		// it gets an id, on the route's From domain as a request's does,
		// and no replay protection.
		id = message.NewMessageID(r.from.Email)
	}
	msg, err := m.Stored(id, time.Now())
	if err != nil {
		return Accepted{}, err
	}
	stored, err := encodeSubmission(m.Recipients, msg)
	if err != nil {
		return Accepted{}, err
	}
	return s.enqueue(ctx, queue.NewMessage{
		TenantID:       sub.TenantID,
		Route:          r.name,
		MessageID:      id,
		Payload:        stored,
		Kind:           kindSubmission,
		Recipients:     m.Recipients, // the envelope's, blind ones too, as an HTTP message's bcc
		IdempotencyKey: key,
		RequestHash:    hash,
		Cost:           cost,
		Limit:          lim,
	})
}

// routing is what resolve and the From rule read of a raw message: its
// tenant, From and Reply-To, in the shape of the JSON request's.
func routing(tenantID string, m *message.Raw) *message.Request {
	return &message.Request{TenantID: tenantID, From: &m.From, ReplyTo: m.ReplyTo}
}

// submissionKey is the idempotency key of a submission: its Message-ID
// and its envelope recipients, compared as recipients are, in any order.
// The recipients belong in it because a client may send one message to
// more recipients than a server takes in one transaction as several
// transactions with the same Message-ID: each is a message of its own,
// not a repeat of the first. A space, which no Idempotency-Key of the
// HTTP API holds, keeps the two doors' keys apart.
func submissionKey(messageID string, rcpts []string) string {
	keys := make([]string, len(rcpts))
	for i, r := range rcpts {
		keys[i] = strings.ToLower(r)
	}
	slices.Sort(keys)
	return "smtp " + messageID + " " + strings.Join(keys, ",")
}

func encodeSubmission(rcpts []string, msg []byte) ([]byte, error) {
	env, err := json.Marshal(submissionEnvelope{Recipients: rcpts})
	if err != nil {
		return nil, fmt.Errorf("delivery: store submission: %w", err)
	}
	out := make([]byte, 0, len(env)+1+len(msg))
	out = append(append(append(out, env...), '\n'), msg...)
	return out, nil
}

// submitted is a stored submission as delivery reads it.
type submitted struct {
	tenantID string
	rcpts    []string
	raw      *message.Raw
}

// decodeSubmission reads a stored submission. The message is checked
// again as it was on accept, so that a payload that skipped the checks
// still cannot send a malformed header.
func decodeSubmission(tenantID string, payload []byte) (*submitted, error) {
	line, msg, ok := bytes.Cut(payload, []byte("\n"))
	if !ok {
		return nil, errors.New("submission without its envelope")
	}
	var env submissionEnvelope
	if err := json.Unmarshal(line, &env); err != nil {
		return nil, fmt.Errorf("submission envelope: %w", err)
	}
	if len(env.Recipients) == 0 {
		return nil, errors.New("submission without recipients")
	}
	raw, err := message.ParseRaw(msg)
	if err != nil {
		return nil, err
	}
	return &submitted{tenantID: tenantID, rcpts: env.Recipients, raw: raw}, nil
}

func (m *submitted) routing() *message.Request { return routing(m.tenantID, m.raw) }

func (m *submitted) recipients() []string { return m.rcpts }

// render writes the message as stored, with the route's From where the
// route sends as another address (the default relay sends as the
// platform) and its Reply-To where the message has none.
func (m *submitted) render(b *bytes.Buffer, _ queue.Record, r route) (transport.Content, error) {
	m.raw.Write(b, message.Edit{From: &r.from, ReplyTo: r.replyTo})
	return transport.Content{EightBit: m.raw.EightBit, UTF8: m.raw.UTF8}, nil
}
