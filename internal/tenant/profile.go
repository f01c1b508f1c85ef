// Package tenant owns a tenant's own SMTP account: the profile a settings
// page ("send emails using my SMTP account") stores, its validation and
// provider presets, and its Redis store with the password sealed.
package tenant

import (
	"errors"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/outbound-mail/outbound/internal/provider"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/validation"
)

// Security is how the connection to the tenant's server is encrypted.
// There is no plaintext mode: a password is never sent unencrypted. It is
// the provider table's type, so presets need no conversion.
type Security = provider.Security

const (
	// SecurityTLS is implicit TLS from the first byte (port 465, RFC 8314).
	SecurityTLS = provider.TLS
	// SecurityStartTLS upgrades a plain connection with STARTTLS (port 587,
	// RFC 3207); a server that does not offer it is refused.
	SecurityStartTLS = provider.StartTLS
)

// AuthMechanism is the SASL mechanism used to log in.
type AuthMechanism string

const (
	AuthPlain AuthMechanism = "plain" // RFC 4616
	AuthLogin AuthMechanism = "login" // for servers that offer nothing else
	// AuthXOAuth2 logs in with an OAuth2 access token (XOAUTH2, or
	// OAUTHBEARER per RFC 7628 where only that is offered).
	AuthXOAuth2 AuthMechanism = "xoauth2"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ErrInvalidID is returned for a tenant id that does not match
// ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$.
var ErrInvalidID = errors.New("tenant: invalid tenant id")

// ValidID reports whether id is a well-formed tenant id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Profile is one tenant's SMTP account.
type Profile struct {
	TenantID          string
	Enabled           bool
	Provider          string
	SenderName        string
	Email             string
	Username          string
	Password          secret.String
	Host              string
	Port              int
	Security          Security
	Auth              AuthMechanism
	FallbackToDefault bool
	// OAuth is set when Auth is xoauth2: how to get access tokens.
	OAuth *OAuth
	// RateLimit overrides the service-wide per-tenant send limits (in
	// recipients); nil uses OUTBOUND_RATE_PER_MINUTE and _PER_DAY.
	RateLimit *RateLimit
	// MaxConnections caps concurrent sessions to this account (0: the
	// service default); PacePerMinute spaces messages to it evenly (0: no
	// pace). Both protect the account from its provider's own limits.
	MaxConnections int
	PacePerMinute  int

	Version   int64 // increments on each write; the ETag
	CreatedAt time.Time
	UpdatedAt time.Time
	LastError *LastError // the last delivery failure caused by this profile
}

// LastError is a failure that is the profile's fault rather than a
// message's (a refused login, say), shown to the operator until the next
// successful delivery.
type LastError struct {
	Code         string    `json:"code"`
	SMTPCode     int       `json:"smtp_code,omitempty"`
	EnhancedCode string    `json:"enhanced_code,omitempty"`
	Message      string    `json:"message"`
	Hint         string    `json:"hint,omitempty"`
	At           time.Time `json:"at"`
	// RetryAt is when delivery tries the account again, while its circuit
	// is open (Code "circuit_open"): no connection is made before then.
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// RateLimit is a tenant's own send allowance, in recipients.
type RateLimit struct {
	PerMinute int `json:"per_minute"`
	PerDay    int `json:"per_day"`
}

// Input is what an operator submits: a whole profile, where omitted fields
// take presets or defaults and an absent password keeps the stored one.
type Input struct {
	Enabled           *bool         `json:"enabled,omitempty"`
	Provider          string        `json:"provider,omitempty"`
	SenderName        string        `json:"sender_name,omitempty"`
	Email             string        `json:"email"`
	Username          string        `json:"username,omitempty"`
	Password          secret.String `json:"password,omitzero"`
	Host              string        `json:"host,omitempty"`
	Port              int           `json:"port,omitempty"`
	Security          Security      `json:"security,omitempty"`
	Auth              AuthMechanism `json:"auth,omitempty"`
	FallbackToDefault bool          `json:"fallback_to_default,omitempty"`
	OAuth             *OAuthInput   `json:"oauth,omitempty"`
	RateLimit         *RateLimit    `json:"rate_limit,omitempty"`
	MaxConnections    int           `json:"max_connections,omitempty"`
	PacePerMinute     int           `json:"pace_per_minute,omitempty"`
}

// Limits on free-text fields, generous for any real value.
const (
	maxSenderName = 256
	maxUsername   = 256
	maxPassword   = 1024
)

// Build turns in into a profile for tenantID. stored, when not nil, is the
// profile being replaced: the secrets in leaves out are kept while the
// profile still sends them where stored did (see keepStoredSecrets), and
// its creation time carries over. The result is validated; a *validation.Error
// lists every bad field.
func Build(tenantID string, in Input, stored *Profile) (Profile, error) {
	var errs validation.Error
	p := Profile{
		TenantID:          tenantID,
		Enabled:           in.Enabled == nil || *in.Enabled,
		Provider:          strings.ToLower(strings.TrimSpace(in.Provider)),
		SenderName:        strings.TrimSpace(in.SenderName),
		Email:             strings.TrimSpace(in.Email),
		Username:          strings.TrimSpace(in.Username),
		Password:          in.Password,
		Host:              strings.ToLower(strings.TrimSuffix(strings.TrimSpace(in.Host), ".")),
		Port:              in.Port,
		Security:          in.Security,
		Auth:              in.Auth,
		FallbackToDefault: in.FallbackToDefault,
		RateLimit:         in.RateLimit,
		MaxConnections:    in.MaxConnections,
		PacePerMinute:     in.PacePerMinute,
	}
	if p.Provider != "" {
		if pr, ok := provider.ByName(p.Provider); ok {
			fillPreset(&p, pr)
		} else {
			errs.Add("provider", "unknown_provider", "unknown provider; known: "+strings.Join(provider.Names(), ", "))
		}
	}
	if p.Security == "" {
		// Port 465 is implicit TLS (RFC 8314); anything else is submission
		// with STARTTLS.
		p.Security = SecurityStartTLS
		if p.Port == 465 {
			p.Security = SecurityTLS
		}
	}
	p.OAuth = buildOAuth(p.Provider, in.OAuth)
	if p.Auth == "" {
		p.Auth = AuthPlain
		if p.OAuth != nil {
			p.Auth = AuthXOAuth2
		}
	}
	if p.Username == "" {
		p.Username = p.Email // Gmail and most providers log in with the address
	}
	keepStoredSecrets(&p, stored, &errs)
	if pr, ok := provider.ForHost(p.Host); ok && pr.SpacedAppPasswords {
		// Google shows App Passwords as four groups of four letters.
		p.Password = secret.New(strings.Join(strings.Fields(p.Password.Reveal()), ""))
	}
	if stored != nil {
		p.CreatedAt = stored.CreatedAt
		p.Version = stored.Version
	}
	p.validate(&errs)
	return p, errs.Err()
}

func (p *Profile) validate(errs *validation.Error) {
	errs.Text("sender_name", p.SenderName, maxSenderName)
	errs.Text("username", p.Username, maxUsername)
	errs.Text("password", p.Password.Reveal(), maxPassword)

	switch {
	case p.Email == "":
		errs.Add("email", "required", "the address mail is sent from")
	case !validation.IsEmail(p.Email):
		errs.Add("email", "invalid_email", "not a valid email address (local@domain, no display name)")
	}
	if p.Username == "" {
		errs.Add("username", "required", "the login name, usually the email address")
	}
	switch {
	case p.Auth == AuthXOAuth2 && p.OAuth == nil:
		errs.Add("oauth", "required", `auth "xoauth2" needs an oauth block (flow, token_url, client_id, ...)`)
	case p.Auth == AuthXOAuth2:
		p.OAuth.validate(errs)
	case p.OAuth != nil:
		errs.Add("oauth", "unexpected", `an oauth block needs auth "xoauth2"`)
	case p.Password.IsZero() && !errs.Has("password"):
		errs.Add("password", "required", "a new profile needs a password (for Gmail, an App Password)")
	}
	switch {
	case p.Host == "":
		errs.Add("host", "required", "the SMTP server, e.g. smtp.gmail.com")
	case !validHost(p.Host):
		errs.Add("host", "invalid_host", "not a host name or IP address")
	}
	if p.Port < 1 || p.Port > 65535 {
		errs.Add("port", "out_of_range", "must be from 1 to 65535")
	}
	if p.Security != SecurityTLS && p.Security != SecurityStartTLS {
		errs.Add("security", "invalid_value", `must be "tls" (implicit TLS) or "starttls"`)
	}
	if p.Auth != AuthPlain && p.Auth != AuthLogin && p.Auth != AuthXOAuth2 {
		errs.Add("auth", "invalid_value", `must be "plain", "login" or "xoauth2"`)
	}
	if rl := p.RateLimit; rl != nil {
		if rl.PerMinute < 1 || rl.PerMinute > 1_000_000 {
			errs.Add("rate_limit.per_minute", "out_of_range", "must be from 1 to 1000000")
		}
		if rl.PerDay < 1 || rl.PerDay > 100_000_000 {
			errs.Add("rate_limit.per_day", "out_of_range", "must be from 1 to 100000000")
		}
	}
	if p.MaxConnections < 0 || p.MaxConnections > 100 {
		errs.Add("max_connections", "out_of_range", "must be from 0 (service default) to 100")
	}
	if p.PacePerMinute < 0 || p.PacePerMinute > 60_000 {
		errs.Add("pace_per_minute", "out_of_range", "must be from 0 (no pace) to 60000")
	}
}

var labelPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validHost accepts an IP literal or an RFC 1123 host name.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 || !strings.Contains(h, ".") && h != "localhost" {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if !labelPattern.MatchString(label) {
			return false
		}
	}
	return true
}

// fillPreset fills in the provider's server where the operator left host,
// port or security out.
func fillPreset(p *Profile, pr provider.Provider) {
	if p.Host == "" {
		p.Host = pr.Host
	}
	if p.Port == 0 {
		p.Port = pr.Port
	}
	if p.Security == "" && p.Port == pr.Port {
		p.Security = pr.Security
	}
}
