// Package provider is the one table of the mail providers a tenant's
// profile can name: their submission servers and other host names, OAuth2
// endpoints and scopes, the advice shown when their servers refuse a
// login, and their published sending limits. Everything else (presets in
// tenant, hints in transport, token advice in oauth) reads it, so adding
// a provider is one entry here and its name in openapi.yaml.
//
// The package imports nothing of the service's: tenant, transport and
// oauth import it.
package provider

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Security is how a connection to the server is encrypted. The tenant
// package's Security is this type.
type Security string

const (
	// TLS is implicit TLS from the first byte (port 465, RFC 8314).
	TLS Security = "tls"
	// StartTLS upgrades a plain connection with STARTTLS (port 587,
	// RFC 3207).
	StartTLS Security = "starttls"
)

// OAuth2 grant types a profile can get SMTP access tokens with.
const (
	// FlowClientCredentials is an app's own identity (Microsoft 365 with
	// SMTP.SendAsApp).
	FlowClientCredentials = "client_credentials"
	// FlowRefreshToken is a user's consent kept as a refresh token (Google,
	// or Microsoft delegated SMTP.Send).
	FlowRefreshToken = "refresh_token"
)

// Provider is one entry of the table.
type Provider struct {
	// Name is what a profile's "provider" field says (the API's enum).
	Name string
	// Label names the provider to people, in hints and errors.
	Label string
	// Host, Port and Security are the submission server a profile that
	// names the provider gets where it leaves them out.
	Host     string
	Port     int
	Security Security
	// Aliases are other names of the same servers, recognised by ForHost.
	// Two entries may share their Host (gmail and google are one server
	// for two kinds of account); an alias belongs to one entry.
	Aliases []string
	// Domains: a host under one of these (smtp.office365.com under
	// office365.com) is taken to be the provider's, for hints.
	Domains []string
	// Addresses are the domains of the provider's own mail addresses
	// (gmail.com), so a connect page can suggest the provider for an
	// address a person types. A company's own domain on Google Workspace
	// or Microsoft 365 is none of these: its MX records tell (MXHosts).
	Addresses []string
	// MXHosts are the provider's mail exchangers as its DNS setup
	// instructions tell a custom domain to publish them: an entry starting
	// with "." is a suffix (".mail.protection.outlook.com"), any other a
	// whole host name, so ForMX can suggest the provider of a company's
	// own domain.
	MXHosts []string
	// Marks are lower-case fragments of a server reply that only this
	// provider's servers write ("gsmtp"), so a hint can name the provider
	// behind a host name ForHost does not know.
	Marks []string
	// SpacedAppPasswords: the provider shows app passwords in groups
	// separated by spaces, which are not part of the password.
	SpacedAppPasswords bool
	// OAuth holds the OAuth2 defaults; nil when there are none.
	OAuth *OAuth
	// Hints advise the person fixing a profile on this provider.
	Hints Hints
	// Limits are the provider's published sending limits for one account.
	Limits Limits
}

// OAuth is a provider's OAuth2 endpoints and scopes for SMTP.
type OAuth struct {
	// Label names the identity platform in advice ("Microsoft 365").
	Label string
	// AuthURL is where a user gives consent (for a connect page's sign-in).
	AuthURL string
	// TokenURL is the token endpoint; "{directory}" in either URL stands
	// for the profile's directory (tenant) id.
	TokenURL string
	// Flow is the grant a profile gets when it names none.
	Flow string
	// Scope is what a user's consent asks for; AppScope, when set, what an
	// app's own token (the client credentials flow) asks for instead.
	Scope    string
	AppScope string
	// Platform names the identity platform's app an operator registers
	// for a connect page's sign-in ("google", "microsoft"): one app serves
	// every entry on that platform (gmail and google).
	Platform string
	// SignInScope is what a connect page's sign-in asks for besides Scope:
	// OpenID Connect's, so the token response carries an ID token naming
	// the account that consented.
	SignInScope string
	// Issuer is the ID tokens' "iss" (OpenID Connect Core 1.0, 2); "{tid}"
	// stands for the token's own "tid" claim (Microsoft's multi-tenant
	// endpoints). JWKSURL is where the platform publishes its signing keys.
	Issuer  string
	JWKSURL string
}

// Hints are the provider's advice texts.
type Hints struct {
	// Login are answers to refused password logins, tried in order.
	Login []Hint
	// Token answers a refused OAuth2 access token.
	Token string
}

// Hint is advice for one kind of refused login.
type Hint struct {
	// Codes are the replies it answers: enhanced status codes ("5.7.9")
	// or three-digit ones ("534").
	Codes []string
	// Texts are lower-case fragments of the reply text it answers.
	Texts []string
	// Own says the codes and texts are the provider's own: they name the
	// failure whatever the host is called (a company's own name in front
	// of Exchange Online, say). Otherwise the hint answers only a host or
	// reply known to be the provider's.
	Own bool
	// Text is the advice.
	Text string
}

// Limits are what one account may send before its provider refuses or
// suspends it. Zero is "none published".
type Limits struct {
	// PerMinute and PerDay count recipients, as the service's own rate
	// limits do. A provider that counts messages a day is given the same
	// number of recipients: every message has at least one, so the
	// account stays under it.
	PerMinute int
	PerDay    int
	// MaxConnections caps concurrent sessions to the account.
	MaxConnections int
	// PacePerMinute spaces messages to the account evenly.
	PacePerMinute int
	// MaxRecipients is the most recipients one message may have.
	MaxRecipients int
}

// All is every provider, in the table's order. The slice is a copy; the
// entries share their slices and OAuth with the table, which callers must
// not change.
func All() []Provider { return slices.Clone(table) }

// Names is every provider's name, sorted.
func Names() []string {
	names := make([]string, len(table))
	for i, p := range table {
		names[i] = p.Name
	}
	slices.Sort(names)
	return names
}

// ByName returns the provider a profile names (lower case).
func ByName(name string) (Provider, bool) {
	for _, p := range table {
		if p.Name == name {
			return p, true
		}
	}
	return Provider{}, false
}

// ForHost returns the provider whose servers host is (its preset host, an
// alias, or a host under one of its domains); where two entries share a
// host, the first in the table. host is compared without case and a
// trailing dot.
func ForHost(host string) (Provider, bool) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return Provider{}, false
	}
	for _, p := range table {
		if p.Host == host || slices.Contains(p.Aliases, host) {
			return p, true
		}
	}
	for _, p := range table {
		for _, d := range p.Domains {
			if strings.HasSuffix(host, "."+d) {
				return p, true
			}
		}
	}
	return Provider{}, false
}

// ForAddress returns the provider whose own addresses email is one of
// (someone@gmail.com is Gmail's), compared without case.
func ForAddress(email string) (Provider, bool) {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return Provider{}, false
	}
	domain := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(email[at+1:])), ".")
	for _, p := range table {
		if slices.Contains(p.Addresses, domain) {
			return p, true
		}
	}
	return Provider{}, false
}

// ForMX returns the provider whose mail exchangers hosts (a domain's MX
// record targets, in any order and case, with or without the final dot)
// are: the first host that is one of a provider's MXHosts decides.
func ForMX(hosts []string) (Provider, bool) {
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		if h == "" {
			continue
		}
		for _, p := range table {
			for _, m := range p.MXHosts {
				if h == m || strings.HasPrefix(m, ".") && strings.HasSuffix(h, m) {
					return p, true
				}
			}
		}
	}
	return Provider{}, false
}

// forReply returns the provider a reply text (lower case) names by one of
// its marks.
func forReply(text string) (Provider, bool) {
	for _, p := range table {
		for _, m := range p.Marks {
			if strings.Contains(text, m) {
				return p, true
			}
		}
	}
	return Provider{}, false
}

// LoginHint is the advice for a password login that host refused with
// reply code, enhanced code and text; "" when no provider has any. The
// provider is known by the host or by marks in the reply; another
// provider's own codes and texts answer whatever the host.
func LoginHint(host string, code int, enhanced, text string) string {
	text = strings.ToLower(text)
	p, known := ForHost(host)
	if !known {
		p, known = forReply(text)
	}
	if known {
		for _, h := range p.Hints.Login {
			if h.answers(code, enhanced, text) {
				return h.Text
			}
		}
	}
	for _, q := range table {
		for _, h := range q.Hints.Login {
			if h.Own && h.answers(code, enhanced, text) {
				return h.Text
			}
		}
	}
	return ""
}

func (h Hint) answers(code int, enhanced, text string) bool {
	for _, c := range h.Codes {
		if c == enhanced || code != 0 && c == strconv.Itoa(code) {
			return true
		}
	}
	for _, t := range h.Texts {
		if strings.Contains(text, t) {
			return true
		}
	}
	return false
}

// TokenHint is the advice for an OAuth2 token host refused; "" when the
// host is no known provider's.
func TokenHint(host string) string {
	if p, ok := ForHost(host); ok {
		return p.Hints.Token
	}
	return ""
}

// ScopeAdvice says which scope each provider's SMTP tokens need, for a
// token endpoint that refused the scope.
func ScopeAdvice() string {
	var parts []string
	var seen []*OAuth
	for _, p := range table {
		o := p.OAuth
		if o == nil || slices.Contains(seen, o) {
			continue
		}
		seen = append(seen, o)
		s := o.Label + " uses " + o.Scope
		if o.AppScope != "" {
			s = o.Label + " app tokens use " + o.AppScope + " (a user's consent: " + o.Scope + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ") + "."
}

// ScopeFor is the scope a token of flow asks for.
func (o *OAuth) ScopeFor(flow string) string {
	if flow == FlowClientCredentials && o.AppScope != "" {
		return o.AppScope
	}
	return o.Scope
}

// TokenURLFor is the token endpoint for a profile in directory; "" when
// the endpoint needs a directory and none is given.
func (o *OAuth) TokenURLFor(directory string) string { return inDirectory(o.TokenURL, directory) }

// AuthURLFor is the consent page for a profile in directory, like
// TokenURLFor.
func (o *OAuth) AuthURLFor(directory string) string { return inDirectory(o.AuthURL, directory) }

func inDirectory(endpoint, directory string) string {
	if !strings.Contains(endpoint, "{directory}") {
		return endpoint
	}
	if directory == "" {
		return ""
	}
	return strings.Replace(endpoint, "{directory}", url.PathEscape(directory), 1)
}
