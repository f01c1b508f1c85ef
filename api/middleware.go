package api

import (
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/apikey"
)

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID honours a caller's X-Request-Id when it is a plain token (so it
// cannot inject into logs) and makes one otherwise.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !requestIDPattern.MatchString(id) {
			id = newRequestID()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

func newRequestID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b))
}

// logRequests writes one line per request, after it is answered.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // render now, so the logged status is the real one
		}
		s.Metrics.HTTPRequest(s.routeLabel(c), c.Request().Method, c.Response().Status, time.Since(start))
		level := slog.LevelInfo
		if c.Response().Status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(c.Request().Context(), level, "request",
			slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
			slog.String("method", c.Request().Method),
			slog.String("route", c.Path()),
			slog.Int("status", c.Response().Status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("api_key", keyName(c)),
		)
		return nil
	}
}

// unmatchedRoute is the route label of a request no route matched.
const unmatchedRoute = "unmatched"

// routeLabel is the request's route pattern when it is one of the server's
// routes, and unmatchedRoute otherwise, so the metric's route label only
// takes values from the route list, whatever path a caller sends.
func (s *Server) routeLabel(c echo.Context) string {
	if p := c.Path(); s.patterns[p] {
		return p
	}
	return unmatchedRoute
}

// requireScope checks the bearer token and the scope the route needs.
func (s *Server) requireScope(scope apikey.Scope) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			token, ok := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
			key, found := s.cfg.Keys.Lookup(token)
			if !ok || !found {
				p := problem(codeUnauthorized, "send Authorization: Bearer <token>")
				p.header = http.Header{"WWW-Authenticate": {`Bearer realm="outbound"`}}
				return p
			}
			c.Set(keyContextKey, key)
			if !key.Allows(scope) {
				return problem(codeForbidden, "this endpoint needs a key with scope "+string(scope))
			}
			return next(c)
		}
	}
}

const keyContextKey = "outbound.apikey"

// apiKey is the request's authenticated key (zero on open routes).
func apiKey(c echo.Context) apikey.Key {
	k, _ := c.Get(keyContextKey).(apikey.Key)
	return k
}

func keyName(c echo.Context) string { return apiKey(c).Name }

// requireOperator refuses a tenant's own admin key (admin@tenant) on a
// route only the operator may use; what says what the route does.
func requireOperator(what string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !apiKey(c).Operator() {
				return operatorOnly(what)
			}
			return next(c)
		}
	}
}

// operatorOnly is the refusal of something only the operator may do.
func operatorOnly(what string) *Problem {
	return problem(codeOperatorOnly, "only an operator key (admin, bound to no tenant) may "+what)
}

func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// limitBody caps how much of a request body is read; the decoder sees an
// *http.MaxBytesError the moment the cap is passed, so an oversized body is
// refused while it is read, not after.
func limitBody(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > limit {
				return problem(codePayloadTooLarge, "the request body is over the limit")
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
			return next(c)
		}
	}
}
