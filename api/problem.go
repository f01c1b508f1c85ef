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

// problem builds a Problem whose status and title are fixed by its code
// (see problemCodes).
func problem(code problemCode, detail string) *Problem {
	c := code.info()
	return &Problem{Type: "urn:outbound:problem:" + c.name, Title: c.title, Status: c.status, Detail: detail, Code: c.name}
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
		p = problem(codeRateLimited, fmt.Sprintf("the tenant may send %d recipients in this window; retry in %d s",
			denied.Result.Limit, ratelimit.Seconds(denied.Result.RetryAfter)))
		p.header = rateLimitHeaders(denied.Result)
		p.header.Set("Retry-After", strconv.FormatInt(max(1, ratelimit.Seconds(denied.Result.RetryAfter)), 10))
		return p
	case errors.As(err, &verr):
		p = problem(codeValidationFailed, "one or more fields are invalid")
		p.Errors = verr.Fields
		return p
	case errors.As(err, &tooLarge):
		return problem(codePayloadTooLarge, "the request body is over the limit")
	case errors.Is(err, tenant.ErrNotFound):
		return problem(codeNotFound, "this tenant has no SMTP profile")
	case errors.Is(err, tenant.ErrInvalidID):
		return problem(codeInvalidTenantID, "tenant ids are 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	case errors.Is(err, queue.ErrNotFound):
		return problem(codeNotFound, "no such message (or its record expired)")
	case errors.Is(err, queue.ErrIdempotencyKeyReused):
		return problem(codeIdempotencyKeyReused, "this Idempotency-Key was first used with a different request")
	case errors.Is(err, queue.ErrNotCancellable):
		return problem(codeNotCancellable, strings.TrimPrefix(err.Error(), "queue: "))
	case errors.Is(err, tenant.ErrPaused):
		return problem(codeTenantPaused, strings.TrimPrefix(err.Error(), "tenant: "))
	case errors.Is(err, suppression.ErrBounced):
		return operatorOnly("replace or remove an entry a hard bounce added")
	case errors.Is(err, suppression.ErrNotFound):
		return problem(codeNotFound, "this address is not on the tenant's suppression list")
	case errors.Is(err, webhook.ErrBadCursor):
		return problem(codeInvalidQuery, "after is the next of an earlier page")
	case errors.Is(err, webhook.ErrNotFound):
		return problem(codeNotFound, "no webhook has this name")
	case errors.Is(err, delivery.ErrFromMismatch):
		return problem(codeFromMismatch, strings.TrimPrefix(err.Error(), "delivery: "))
	case errors.Is(err, delivery.ErrNoRoute):
		return problem(codeNoRoute, "the tenant has no enabled SMTP profile and no default relay is configured")
	case errors.Is(err, tenant.ErrVersionConflict):
		return problem(codePreconditionFailed, "the profile changed since the version named in If-Match")
	case unavailable(err):
		p = problem(codeUnavailable, "storage is unreachable; retry shortly")
		p.header = http.Header{"Retry-After": {"1"}}
		return p
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return problem(codeNotFound, "no such endpoint")
		case http.StatusMethodNotAllowed:
			return problem(codeMethodNotAllowed, "this endpoint does not take that method")
		case http.StatusRequestEntityTooLarge:
			return problem(codePayloadTooLarge, "the request body is over the limit")
		case http.StatusUnsupportedMediaType:
			return problem(codeUnsupportedMediaType, "send application/json")
		}
	}
	return problem(codeInternalError, "")
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
	if p.Status >= 500 && p.Code != codeUnavailable.String() {
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
