package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/suppression"
	"github.com/outbound-mail/outbound/internal/validation"
)

// tenantAndEmail are the tenant and the address the URL names.
func tenantAndEmail(c echo.Context) (tenantID, email string, err error) {
	if tenantID, err = tenantParam(c); err != nil {
		return "", "", err
	}
	email = pathParam(c, "email")
	if !validation.IsEmail(email) {
		var verr validation.Error
		verr.Add("email", "invalid_email", "not an email address")
		return "", "", &verr
	}
	return tenantID, email, nil
}

// pageLimit is a listing's ?limit=: 1 to 1000, 100 when absent.
func pageLimit(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 100, nil
	}
	limit, err := strconv.Atoi(v)
	if err != nil || limit < 1 || limit > 1000 {
		return 0, problem(codeInvalidQuery, "limit is 1 to 1000")
	}
	return limit, nil
}

type suppressionList struct {
	Suppressions []suppression.Entry `json:"suppressions"`
	Next         string              `json:"next,omitempty"`
}

// listSuppressions pages through the list by address: ?after=<address>&limit=N.
func (s *Server) listSuppressions(c echo.Context) error {
	id, err := tenantParam(c)
	if err != nil {
		return err
	}
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	entries, err := s.Suppressions.List(c.Request().Context(), id, c.QueryParam("after"), limit)
	if err != nil {
		return err
	}
	out := suppressionList{Suppressions: entries}
	if len(entries) == limit {
		out.Next = entries[len(entries)-1].Email
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getSuppression(c echo.Context) error {
	id, email, err := tenantAndEmail(c)
	if err != nil {
		return err
	}
	e, err := s.Suppressions.Get(c.Request().Context(), id, email)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

// maxReason bounds the free-text reasons of suppressions and pauses.
const maxReason = 512

type suppressionInput struct {
	Reason string `json:"reason,omitempty"`
}

// putSuppression adds an address by hand (a body is optional). A tenant's
// own admin may not replace an entry a bounce added.
func (s *Server) putSuppression(c echo.Context) error {
	id, email, err := tenantAndEmail(c)
	if err != nil {
		return err
	}
	var in suppressionInput
	if empty, err := bodyIsEmpty(c); err != nil {
		return err
	} else if !empty {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	var verr validation.Error
	if verr.Text("reason", in.Reason, maxReason); verr.Err() != nil {
		return &verr
	}
	if in.Reason == "" {
		in.Reason = "added by an operator"
	}
	add := s.Suppressions.Add
	if !apiKey(c).Operator() {
		add = s.Suppressions.AddUnlessBounced
	}
	e, err := add(c.Request().Context(), id, suppression.Entry{Email: email, Reason: in.Reason, Source: "manual"})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (s *Server) deleteSuppression(c echo.Context) error {
	id, email, err := tenantAndEmail(c)
	if err != nil {
		return err
	}
	remove := s.Suppressions.Remove
	if !apiKey(c).Operator() {
		remove = s.Suppressions.RemoveUnlessBounced
	}
	if err := remove(c.Request().Context(), id, email); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
