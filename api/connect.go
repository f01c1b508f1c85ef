package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// ConnectLinks makes the links of the connect page (internal/connect).
type ConnectLinks interface {
	// Create returns the link's URL and expiry; bad input is a
	// *validation.Error. A zero lifetime takes the default.
	Create(ctx context.Context, tenantID, returnURL, locale string, lifetime time.Duration) (string, time.Time, error)
}

type connectRequest struct {
	ReturnURL string `json:"return_url"`
	Locale    string `json:"locale,omitempty"`
	ExpiresIn int    `json:"expires_in,omitempty"` // seconds
}

type connectLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createConnectLink makes a link a product sends its tenant to, so the
// tenant connects its own mailbox on the connect page. The link is the
// secret: it is answered once and stored only as a hash.
func (s *Server) createConnectLink(c echo.Context) error {
	id, err := tenantParam(c)
	if err != nil {
		return err
	}
	var in connectRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	// Bounded before it becomes a Duration, which a huge count would overflow.
	secs := min(max(in.ExpiresIn, -1), 1<<31)
	url, expires, err := s.Connect.Create(c.Request().Context(), id, in.ReturnURL, in.Locale, time.Duration(secs)*time.Second)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, connectLink{URL: url, ExpiresAt: expires.UTC()})
}
