package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/validation"
)

type statusInput struct {
	Sending string `json:"sending"`
	Reason  string `json:"reason,omitempty"`
}

func (s *Server) getStatus(c echo.Context) error {
	id, err := tenantParam(c)
	if err != nil {
		return err
	}
	st, err := s.Status.GetStatus(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// putStatus pauses or resumes a tenant. Paused: new messages are refused
// (423) and queued ones wait. Resumed: the waiting ones go at once (the
// store tells delivery of the change; see tenant.Store.Watch).
func (s *Server) putStatus(c echo.Context) error {
	id, err := tenantParam(c)
	if err != nil {
		return err
	}
	var in statusInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var verr validation.Error
	if in.Sending != tenant.SendingActive && in.Sending != tenant.SendingPaused {
		verr.Add("sending", "invalid_value", `must be "active" or "paused"`)
	}
	verr.Text("reason", in.Reason, maxReason)
	if err := verr.Err(); err != nil {
		return err
	}
	st, err := s.Status.SetStatus(c.Request().Context(), id, tenant.Status{Sending: in.Sending, Reason: in.Reason})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}
