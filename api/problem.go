package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/delivery"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/suppression"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/validation"
	"github.com/outbound-mail/outbound/internal/webhook"
)

// Problem is an RFC 9457 problem detail with a stable machine code.
type Problem struct {
	Type      string             `json:"type"`
	Title     string             `json:"title"`
	Status    int                `json:"status"`
	Detail    string             `json:"detail,omitempty"`
	Code      string             `json:"code"`
	Errors    []validation.Field `json:"errors,omitempty"`
	RequestID string             `json:"request_id,omitempty"`

	header http.Header // extra response headers (Retry-After, WWW-Authenticate)
}

func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// problem builds a Problem whose title is fixed by its code.
func problem(code, detail string) *Problem {
	s, ok := problemStatus[code]
	if !ok {
		s = problemStatus["internal_error"]
	}
	return &Problem{Type: "urn:outbound:problem:" + code, Title: s.title, Status: s.status, Detail: detail, Code: code}
}

// problemStatus is the one table from error codes to HTTP statuses.
var problemStatus = map[string]struct {
	status int
	title  string
}{
	"invalid_json":           {http.StatusBadRequest, "Request body is not valid JSON"},
	"invalid_tenant_id":      {http.StatusBadRequest, "Invalid tenant id"},
	"invalid_header":         {http.StatusBadRequest, "Invalid request header"},
	"invalid_query":          {http.StatusBadRequest, "Invalid query parameter"},
	"unauthorized":           {http.StatusUnauthorized, "Missing or invalid API token"},
	"forbidden":              {http.StatusForbidden, "API token lacks the scope for this request"},
	"operator_only":          {http.StatusForbidden, "Only the operator may do this"},
	"not_found":              {http.StatusNotFound, "Not found"},
	"method_not_allowed":     {http.StatusMethodNotAllowed, "Method not allowed"},
	"idempotency_key_reused": {http.StatusConflict, "Idempotency key reused with a different request"},
	"not_cancellable":        {http.StatusConflict, "Message is being sent or is done"},
	"tenant_paused":          {http.StatusLocked, "Tenant's sending is paused"},
	"precondition_failed":    {http.StatusPreconditionFailed, "Precondition failed"},
	"payload_too_large":      {http.StatusRequestEntityTooLarge, "Request body too large"},
	"unsupported_media_type": {http.StatusUnsupportedMediaType, "Unsupported media type"},
	"validation_failed":      {http.StatusUnprocessableEntity, "Validation failed"},
	"from_mismatch":          {http.StatusUnprocessableEntity, "From address does not match the tenant's account"},
	"no_route":               {http.StatusUnprocessableEntity, "No way to send for this tenant"},
	"rate_limited":           {http.StatusTooManyRequests, "Tenant is over its sending rate"},
	"unavailable":            {http.StatusServiceUnavailable, "Service temporarily unavailable"},
	"internal_error":         {http.StatusInternalServerError, "Internal error"},
}

// toProblem maps any error a handler returns to a Problem. Domain errors are
// mapped here and only here.
func toProblem(err error) *Problem {
	var p *Problem
	var verr *validation.Error
	var he *echo.HTTPError
	var tooLarge *http.MaxBytesError
	var denied *ratelimit.DeniedError
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &denied):
		p = problem("rate_limited", fmt.Sprintf("the tenant may send %d recipients in this window; retry in %d s",
			denied.Result.Limit, ratelimit.Seconds(denied.Result.RetryAfter)))
		p.header = rateLimitHeaders(denied.Result)
		p.header.Set("Retry-After", strconv.FormatInt(max(1, ratelimit.Seconds(denied.Result.RetryAfter)), 10))
		return p
	case errors.As(err, &verr):
		p = problem("validation_failed", "one or more fields are invalid")
		p.Errors = verr.Fields
		return p
	case errors.As(err, &tooLarge):
		return problem("payload_too_large", "the request body is over the limit")
	case errors.Is(err, tenant.ErrNotFound):
		return problem("not_found", "this tenant has no SMTP profile")
	case errors.Is(err, tenant.ErrInvalidID):
		return problem("invalid_tenant_id", "tenant ids are 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	case errors.Is(err, queue.ErrNotFound):
		return problem("not_found", "no such message (or its record expired)")
	case errors.Is(err, queue.ErrIdempotencyKeyReused):
		return problem("idempotency_key_reused", "this Idempotency-Key was first used with a different request")
	case errors.Is(err, queue.ErrNotCancellable):
		return problem("not_cancellable", strings.TrimPrefix(err.Error(), "queue: "))
	case errors.Is(err, tenant.ErrPaused):
		return problem("tenant_paused", strings.TrimPrefix(err.Error(), "tenant: "))
	case errors.Is(err, suppression.ErrBounced):
		return operatorOnly("replace or remove an entry a hard bounce added")
	case errors.Is(err, suppression.ErrNotFound):
		return problem("not_found", "this address is not on the tenant's suppression list")
	case errors.Is(err, webhook.ErrBadCursor):
		return problem("invalid_query", "after is the next of an earlier page")
	case errors.Is(err, webhook.ErrNotFound):
		return problem("not_found", "no webhook has this name")
	case errors.Is(err, delivery.ErrFromMismatch):
		return problem("from_mismatch", strings.TrimPrefix(err.Error(), "delivery: "))
	case errors.Is(err, delivery.ErrNoRoute):
		return problem("no_route", "the tenant has no enabled SMTP profile and no default relay is configured")
	case errors.Is(err, tenant.ErrVersionConflict):
		return problem("precondition_failed", "the profile changed since the version named in If-Match")
	case unavailable(err):
		p = problem("unavailable", "storage is unreachable; retry shortly")
		p.header = http.Header{"Retry-After": {"1"}}
		return p
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return problem("not_found", "no such endpoint")
		case http.StatusMethodNotAllowed:
			return problem("method_not_allowed", "this endpoint does not take that method")
		case http.StatusRequestEntityTooLarge:
			return problem("payload_too_large", "the request body is over the limit")
		case http.StatusUnsupportedMediaType:
			return problem("unsupported_media_type", "send application/json")
		}
	}
	return problem("internal_error", "")
}

// unavailable recognises a storage outage: Redis refusing, timing out, or
// the client's pool exhausted while it is down.
func unavailable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) ||
		redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsClusterDownError(err) ||
		redis.IsTryAgainError(err) || redis.IsMasterDownError(err)
}

// errorHandler renders every error as application/problem+json.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := toProblem(err)
	p.RequestID = c.Response().Header().Get(echo.HeaderXRequestID)
	if p.Status >= 500 && p.Code != "unavailable" {
		s.log.ErrorContext(c.Request().Context(), "request failed", "error", err,
			"request_id", p.RequestID, "route", c.Path())
	}
	for k, vs := range p.header {
		for _, v := range vs {
			c.Response().Header().Add(k, v)
		}
	}
	body, _ := json.Marshal(p)
	_ = c.Blob(p.Status, "application/problem+json", body)
}
