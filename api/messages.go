package api

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/delivery"
	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
)

// MessageService accepts messages and reports on them.
type MessageService interface {
	// Accept queues req; body is the JSON it was decoded from.
	Accept(ctx context.Context, req *message.Request, body []byte, idempotencyKey string) (delivery.Accepted, error)
	Status(ctx context.Context, id string) (queue.Record, error)
	Cancel(ctx context.Context, id string) error
}

type acceptedView struct {
	ID       string       `json:"id"`
	Status   queue.Status `json:"status"`
	TenantID string       `json:"tenant_id"`
	Route    string       `json:"route"`
}

// idempotencyKeyPattern: printable ASCII without spaces, as most APIs
// that take the header accept.
var idempotencyKeyPattern = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// postMessage answers 202 once the message is stored in Redis. A repeat
// under the same Idempotency-Key answers 200 with the first message.
func (s *Server) postMessage(c echo.Context) error {
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	var req message.Request
	body, err := decodeJSONBody(c, &req)
	if err != nil {
		return err
	}
	if !apiKey(c).AllowsTenant(req.TenantID) {
		return problem(codeForbidden, "this key is bound to another tenant")
	}
	a, err := s.Messages.Accept(c.Request().Context(), &req, body, key)
	if err != nil {
		return err
	}
	status, view := acceptedAnswer(a)
	if !a.Replayed {
		for k, v := range rateLimitHeaders(a.RateLimit) {
			c.Response().Header()[k] = v
		}
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/messages/"+a.ID)
	return c.JSON(status, view)
}

// idempotencyKey is the request's Idempotency-Key, "" without one.
func idempotencyKey(c echo.Context) (string, error) {
	key := c.Request().Header.Get("Idempotency-Key")
	if key != "" && !idempotencyKeyPattern.MatchString(key) {
		return "", problem(codeInvalidHeader, "Idempotency-Key must be 1-255 printable ASCII characters without spaces")
	}
	return key, nil
}

// acceptedAnswer is what POST /v1/messages answers for an accepted
// message: 202, or 200 for a replay under its Idempotency-Key.
func acceptedAnswer(a delivery.Accepted) (int, *acceptedView) {
	status := http.StatusAccepted
	if a.Replayed {
		status = http.StatusOK
	}
	return status, &acceptedView{ID: a.ID, Status: a.Status, TenantID: a.TenantID, Route: a.Route}
}

type messageView struct {
	ID                   string              `json:"id"`
	TenantID             string              `json:"tenant_id"`
	Status               queue.Status        `json:"status"`
	Route                string              `json:"route"`
	CreatedAt            time.Time           `json:"created_at"`
	UpdatedAt            time.Time           `json:"updated_at"`
	SentAt               *time.Time          `json:"sent_at"`
	NextAttemptAt        *time.Time          `json:"next_attempt_at,omitempty"`
	Attempts             []queue.Attempt     `json:"attempts"`
	Recipients           []queue.Recipient   `json:"recipients,omitempty"`
	RejectedRecipients   []queue.Rejection   `json:"rejected_recipients,omitempty"`
	SuppressedRecipients []queue.Suppression `json:"suppressed_recipients,omitempty"`
	SendAt               *time.Time          `json:"send_at,omitempty"`
	Error                *string             `json:"error"`
}

// message reads a message's record; another tenant's message, for a
// tenant-bound key, does not exist.
func (s *Server) message(c echo.Context) (queue.Record, error) {
	rec, err := s.Messages.Status(c.Request().Context(), pathParam(c, "id"))
	if err != nil {
		return queue.Record{}, err
	}
	if !apiKey(c).AllowsTenant(rec.TenantID) {
		return queue.Record{}, queue.ErrNotFound
	}
	return rec, nil
}

// getMessage shows a message's status: no body, no credentials.
func (s *Server) getMessage(c echo.Context) error {
	rec, err := s.message(c)
	if err != nil {
		return err
	}
	v := messageView{ID: rec.ID, TenantID: rec.TenantID, Status: rec.Status, Route: rec.Route,
		CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, Attempts: rec.Attempts,
		Recipients: rec.Recipients, RejectedRecipients: rec.Rejected, SuppressedRecipients: rec.Suppressed, SentAt: timeOrNil(rec.SentAt),
		SendAt: timeOrNil(rec.SendAt)}
	// A scheduled message the tenant's rate window could not take at its
	// send_at waits until it can: next_attempt_at says when.
	if rec.Status == queue.StatusDeferred || rec.Status == queue.StatusScheduled {
		v.NextAttemptAt = timeOrNil(rec.NextAttemptAt)
	}
	if v.Attempts == nil {
		v.Attempts = []queue.Attempt{}
	}
	if rec.Error != "" {
		v.Error = &rec.Error
	}
	return c.JSON(http.StatusOK, v)
}

// cancelMessage takes back a scheduled, queued or deferred message; one
// being sent or done is a 409.
func (s *Server) cancelMessage(c echo.Context) error {
	rec, err := s.message(c) // another tenant's message does not exist
	if err != nil {
		return err
	}
	if err := s.Messages.Cancel(c.Request().Context(), rec.ID); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, acceptedView{ID: rec.ID, Status: queue.StatusCancelled, TenantID: rec.TenantID, Route: rec.Route})
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// rateLimitHeaders are the IETF draft's RateLimit-Limit, -Remaining and
// -Reset (seconds until the window is full again) for the binding window.
func rateLimitHeaders(r ratelimit.Result) http.Header {
	return http.Header{
		"Ratelimit-Limit":     {strconv.Itoa(r.Limit)},
		"Ratelimit-Remaining": {strconv.Itoa(r.Remaining)},
		"Ratelimit-Reset":     {strconv.FormatInt(ratelimit.Seconds(r.ResetAfter), 10)},
	}
}
