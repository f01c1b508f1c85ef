package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
)

// profileView is a profile as the API shows it: never the password, only
// whether one is set.
type profileView struct {
	TenantID          string               `json:"tenant_id"`
	Enabled           bool                 `json:"enabled"`
	Provider          string               `json:"provider,omitempty"`
	SenderName        string               `json:"sender_name"`
	Email             string               `json:"email"`
	Username          string               `json:"username"`
	PasswordSet       bool                 `json:"password_set"`
	Host              string               `json:"host"`
	Port              int                  `json:"port"`
	Security          tenant.Security      `json:"security"`
	Auth              tenant.AuthMechanism `json:"auth"`
	FallbackToDefault bool                 `json:"fallback_to_default"`
	OAuth             *oauthView           `json:"oauth,omitempty"`
	RateLimit         *tenant.RateLimit    `json:"rate_limit,omitempty"`
	MaxConnections    int                  `json:"max_connections,omitempty"`
	PacePerMinute     int                  `json:"pace_per_minute,omitempty"`
	EffectiveLimits   limitsView           `json:"effective_limits"`
	Version           int64                `json:"version"`
	CreatedAt         time.Time            `json:"created_at"`
	UpdatedAt         time.Time            `json:"updated_at"`
	LastError         *tenant.LastError    `json:"last_error,omitempty"`
}

// limitsView is what is in force for the profile: its own limits, its
// provider's where it has none and they are lower, else the service's
// (tenant.Limits.InForce).
type limitsView struct {
	PerMinute      int `json:"per_minute"`
	PerDay         int `json:"per_day"`
	MaxConnections int `json:"max_connections"`
	PacePerMinute  int `json:"pace_per_minute"`
	MaxRecipients  int `json:"max_recipients,omitempty"`
}

// oauthView shows an OAuth2 block without its secrets, only whether each
// is set.
type oauthView struct {
	Flow            string `json:"flow"`
	TokenURL        string `json:"token_url"`
	ClientID        string `json:"client_id"`
	Scope           string `json:"scope,omitempty"`
	DirectoryID     string `json:"directory_id,omitempty"`
	ClientSecretSet bool   `json:"client_secret_set"`
	RefreshTokenSet bool   `json:"refresh_token_set"`
}

func viewOf(p tenant.Profile, service tenant.Limits) profileView {
	var ov *oauthView
	if o := p.OAuth; o != nil {
		ov = &oauthView{Flow: o.Flow, TokenURL: o.TokenURL, ClientID: o.ClientID, Scope: o.Scope, DirectoryID: o.DirectoryID,
			ClientSecretSet: !o.ClientSecret.IsZero(), RefreshTokenSet: !o.RefreshToken.IsZero()}
	}
	return profileView{OAuth: ov,
		TenantID: p.TenantID, Enabled: p.Enabled, Provider: p.Provider, SenderName: p.SenderName,
		Email: p.Email, Username: p.Username, PasswordSet: !p.Password.IsZero(),
		Host: p.Host, Port: p.Port, Security: p.Security, Auth: p.Auth,
		FallbackToDefault: p.FallbackToDefault, RateLimit: p.RateLimit, MaxConnections: p.MaxConnections,
		PacePerMinute: p.PacePerMinute, EffectiveLimits: effectiveLimits(service.InForce(&p)), Version: p.Version,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, LastError: p.LastError,
	}
}

func effectiveLimits(l tenant.Limits) limitsView {
	return limitsView{PerMinute: l.RatePerMinute, PerDay: l.RatePerDay, MaxConnections: l.MaxConnections,
		PacePerMinute: l.PacePerMinute, MaxRecipients: l.MaxRecipients}
}

// tenantParam is the tenant the URL names; a tenant-bound key may name
// only its own.
func tenantParam(c echo.Context) (string, error) {
	id := pathParam(c, "tenant")
	if !tenant.ValidID(id) {
		return "", tenant.ErrInvalidID
	}
	if !apiKey(c).AllowsTenant(id) {
		return "", problem(codeForbidden, "this key is bound to another tenant")
	}
	return id, nil
}

func (s *Server) writeProfile(c echo.Context, status int, p tenant.Profile) error {
	c.Response().Header().Set("ETag", etag(p.Version))
	return c.JSON(status, viewOf(p, s.cfg.Limits))
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch reads If-Match: absent, "*" (any existing profile), or one
// version tag ("3" or W/"3").
type ifMatch struct {
	present bool
	any     bool
	version int64
}

func parseIfMatch(c echo.Context) ifMatch {
	h := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if h == "" {
		return ifMatch{}
	}
	if h == "*" {
		return ifMatch{present: true, any: true}
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || v < 1 {
		// An unknown tag can never match the current one.
		return ifMatch{present: true, version: -1}
	}
	return ifMatch{present: true, version: v}
}

func (m ifMatch) allows(stored tenant.Profile, found bool) bool {
	if !m.present {
		return true
	}
	return found && (m.any || stored.Version == m.version)
}

func (s *Server) getProfile(c echo.Context) error {
	id, err := tenantParam(c)
	if err != nil {
		return err
	}
	p, err := s.Profiles.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return s.writeProfile(c, http.StatusOK, p)
}

// putProfile creates (201) or replaces (200) a profile. A blank password
// keeps the stored one, as a settings form with an empty password field
// expects. What a change does to mail under way (held messages woken, old
// sessions closed) follows from the store's write: see tenant.Store.Watch
// and delivery's tenantChanged.
func (s *Server) putProfile(c echo.Context) error {
	id, err := tenantParam(c)
	if err != nil {
		return err
	}
	match := parseIfMatch(c)
	var in tenant.Input
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	// Optimistic concurrency: without If-Match a lost race is retried on
	// the fresh version; with it, it is the caller's 412.
	for range 3 {
		stored, found, err := s.storedProfile(c, id)
		if err != nil {
			return err
		}
		if !match.allows(stored, found) {
			return problem(codePreconditionFailed, "If-Match does not name the current profile version")
		}
		p, err := tenant.Build(id, in, storedOrNil(stored, found))
		if err != nil {
			return err
		}
		if err := s.withinLimits(c, &p, storedOrNil(stored, found)); err != nil {
			return err
		}
		saved, err := s.Profiles.Put(ctx, p, p.Version)
		if errors.Is(err, tenant.ErrVersionConflict) && !match.present {
			continue
		}
		if err != nil {
			return err
		}
		status := http.StatusOK
		if !found {
			status = http.StatusCreated
			c.Response().Header().Set(echo.HeaderLocation, c.Request().URL.Path)
		}
		return s.writeProfile(c, status, saved)
	}
	return problem(codePreconditionFailed, "the profile kept changing; retry")
}

// withinLimits refuses a tenant's own admin a change from stored to next
// (nil: deleting) that raises the limits in force (tenant.Limits.Raises).
func (s *Server) withinLimits(c echo.Context, next, stored *tenant.Profile) error {
	if apiKey(c).Operator() {
		return nil
	}
	if raised := s.cfg.Limits.Raises(next, stored); len(raised) > 0 {
		return operatorOnly("raise " + strings.Join(raised, ", ") +
			" above what is in force (the profile's own limits, or the service's where it has none; a provider's defaults do not count)")
	}
	return nil
}

// storedProfile is the current profile; found is false when there is none.
func (s *Server) storedProfile(c echo.Context, id string) (p tenant.Profile, found bool, err error) {
	p, err = s.Profiles.Get(c.Request().Context(), id)
	if errors.Is(err, tenant.ErrNotFound) {
		return tenant.Profile{}, false, nil
	}
	return p, err == nil, err
}

func (s *Server) deleteProfile(c echo.Context) error {
	id, err := tenantParam(c)
	if err != nil {
		return err
	}
	match := parseIfMatch(c)
	version := int64(0)
	if match.present && !match.any {
		version = match.version
	}
	if !apiKey(c).Operator() {
		// Deleting puts the tenant on the service's rate: refused when that
		// is a raise. The version checked is the version deleted.
		stored, found, err := s.storedProfile(c, id)
		if err != nil {
			return err
		}
		if found {
			if err := s.withinLimits(c, nil, &stored); err != nil {
				return err
			}
			if version == 0 {
				version = stored.Version
			}
		}
	}
	err = s.Profiles.Delete(c.Request().Context(), id, version)
	if errors.Is(err, tenant.ErrNotFound) && match.present {
		return problem(codePreconditionFailed, "no profile exists for If-Match to match")
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// verifyResult is the answer of the "test connection" button.
type verifyResult struct {
	OK            bool         `json:"ok"`
	TLSVersion    string       `json:"tls_version,omitempty"`
	AuthMechanism string       `json:"auth_mechanism,omitempty"`
	LatencyMS     int64        `json:"latency_ms"`
	Error         *verifyError `json:"error,omitempty"`
}

type verifyError struct {
	Code         string `json:"code"`
	SMTPCode     int    `json:"smtp_code,omitempty"`
	EnhancedCode string `json:"enhanced_code,omitempty"`
	Message      string `json:"message"`
	Hint         string `json:"hint,omitempty"`
}

// verifyProfile dials the stored profile, or the one in the body without
// storing it (a body without a password uses the stored one), and logs in.
// A failed login is a 200 with ok:false: the request itself succeeded.
func (s *Server) verifyProfile(c echo.Context) error {
	id, err := tenantParam(c)
	if err != nil {
		return err
	}
	stored, found, err := s.storedProfile(c, id)
	if err != nil {
		return err
	}
	empty, err := bodyIsEmpty(c)
	if err != nil {
		return err
	}
	var p tenant.Profile
	switch {
	case empty && !found:
		return problem(codeNotFound, "this tenant has no SMTP profile; send one in the body to test it")
	case empty:
		p = stored
	default:
		var in tenant.Input
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		if p, err = tenant.Build(id, in, storedOrNil(stored, found)); err != nil {
			return err
		}
	}

	start := time.Now()
	v, err := s.Verifier.Verify(c.Request().Context(), p, empty)
	if err != nil {
		var te *transport.Error
		if !errors.As(err, &te) {
			return err
		}
		return c.JSON(http.StatusOK, verifyResult{LatencyMS: time.Since(start).Milliseconds(), Error: &verifyError{
			Code: te.Code, SMTPCode: te.SMTPCode, EnhancedCode: te.EnhancedCode, Message: te.Message, Hint: te.Hint,
		}})
	}
	return c.JSON(http.StatusOK, verifyResult{OK: true, TLSVersion: v.TLSVersion, AuthMechanism: v.Mechanism,
		LatencyMS: v.Latency.Milliseconds()})
}

// storedOrNil is what tenant.Build takes as "the profile being replaced".
func storedOrNil(p tenant.Profile, found bool) *tenant.Profile {
	if !found {
		return nil
	}
	return &p
}
