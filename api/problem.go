package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/delivery"
	"github.com/outbound-mail/outbound/internal/outage"
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

// toProblem maps any error a handler returns to a Problem, through the
// first rule of problemRules that matches it; anything else is an
// internal error.
func toProblem(err error) *Problem {
	for _, r := range problemRules {
		if p := r(err); p != nil {
			return p
		}
	}
	return problem(codeInternalError, "")
}

// A problemRule answers the Problem for an error of the kind it knows by
// type (errors.As) or by sentinel (errors.Is), or nil.
type problemRule func(error) *Problem

// on maps errors matching target to what answer makes.
func on(target error, answer func() *Problem) problemRule {
	return func(err error) *Problem {
		if errors.Is(err, target) {
			return answer()
		}
		return nil
	}
}

// is maps errors matching target to code with a fixed detail.
func is(target error, code problemCode, detail string) problemRule {
	return on(target, func() *Problem { return problem(code, detail) })
}

// as maps errors of type T to the Problem answer makes of them (nil:
// none after all).
func as[T error](answer func(T) *Problem) problemRule {
	return func(err error) *Problem {
		var t T
		if errors.As(err, &t) {
			return answer(t)
		}
		return nil
	}
}

// problemRules is the one table from domain errors to problems, in the
// order they are tried. Domain errors are mapped here and only here; the
// packages that talk to Redis mark a storage outage (outage.ErrUnavailable)
// so that nothing here knows Redis.
var problemRules = []problemRule{
	as(func(p *Problem) *Problem { return p }),
	as(func(denied *ratelimit.DeniedError) *Problem {
		p := problem(codeRateLimited, fmt.Sprintf("the tenant may send %d recipients in this window; retry in %d s",
			denied.Result.Limit, ratelimit.Seconds(denied.Result.RetryAfter)))
		p.header = rateLimitHeaders(denied.Result)
		p.header.Set("Retry-After", strconv.FormatInt(max(1, ratelimit.Seconds(denied.Result.RetryAfter)), 10))
		return p
	}),
	as(func(verr *validation.Error) *Problem {
		p := problem(codeValidationFailed, "one or more fields are invalid")
		p.Errors = verr.Fields
		return p
	}),
	as(func(*http.MaxBytesError) *Problem {
		return problem(codePayloadTooLarge, "the request body is over the limit")
	}),
	is(tenant.ErrNotFound, codeNotFound, "this tenant has no SMTP profile"),
	is(tenant.ErrInvalidID, codeInvalidTenantID, "tenant ids are 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"),
	is(queue.ErrNotFound, codeNotFound, "no such message (or its record expired)"),
	is(queue.ErrIdempotencyKeyReused, codeIdempotencyKeyReused, "this Idempotency-Key was first used with a different request"),
	as(func(e *queue.NotCancellableError) *Problem {
		return problem(codeNotCancellable, "message is being sent or is done (status "+string(e.Status)+")")
	}),
	as(func(e *tenant.PausedError) *Problem { return problem(codeTenantPaused, "sending is paused: "+e.Reason) }),
	on(suppression.ErrBounced, func() *Problem { return operatorOnly("replace or remove an entry a hard bounce added") }),
	is(suppression.ErrNotFound, codeNotFound, "this address is not on the tenant's suppression list"),
	is(webhook.ErrBadCursor, codeInvalidQuery, "after is the next of an earlier page"),
	is(webhook.ErrNotFound, codeNotFound, "no webhook has this name"),
	as(func(e *delivery.FromMismatchError) *Problem {
		return problem(codeFromMismatch, "from address is not the tenant's account address: the account sends as "+e.Account)
	}),
	is(delivery.ErrNoRoute, codeNoRoute, "the tenant has no enabled SMTP profile and no default relay is configured"),
	is(tenant.ErrVersionConflict, codePreconditionFailed, "the profile changed since the version named in If-Match"),
	on(outage.ErrUnavailable, func() *Problem {
		p := problem(codeUnavailable, "storage is unreachable; retry shortly")
		p.header = http.Header{"Retry-After": {"1"}}
		return p
	}),
	as(func(he *echo.HTTPError) *Problem {
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
		return nil
	}),
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
