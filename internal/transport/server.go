// Package transport speaks SMTP to submission servers: it dials (through the
// egress guard for tenant-entered hosts), encrypts (implicit TLS or required
// STARTTLS, certificates always verified), authenticates, sends, and turns
// every failure into an *Error with a stable code and a hint a person can
// act on.
package transport

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"strconv"

	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// Server is an SMTP account: where to connect and how to log in.
type Server struct {
	Host     string
	Port     int
	Security tenant.Security
	Auth     tenant.AuthMechanism
	Username string
	Password secret.String
	// Token is the OAuth2 access token for XOAUTH2 / OAUTHBEARER, and
	// Grant identifies where it came from (flow, client, token endpoint
	// and a hash of the client secret): sessions are pooled by grant,
	// since the token itself changes every hour. The refresh token is not
	// part of it: providers rotate it on refreshes, and a rotated one is
	// the same consent to the same mailbox, whose sessions, cap, pace and
	// quota hold must carry over.
	Token secret.String
	Grant string
	// Tenant is whose credentials these are; empty for the operator's own
	// default relay. Sessions are pooled per tenant, so a session one
	// tenant logged in is never lent to another, even where two tenants
	// entered the same account.
	Tenant string
	// Trusted servers (the operator's own default relay) skip the egress
	// guard; tenant-entered ones never do.
	Trusted bool
}

// FromProfile is the server a tenant profile names. An xoauth2 profile's
// Token is still to be filled in.
func FromProfile(p tenant.Profile) Server {
	s := Server{Host: p.Host, Port: p.Port, Security: p.Security, Auth: p.Auth,
		Username: p.Username, Password: p.Password, Tenant: p.TenantID}
	if o := p.OAuth; o != nil {
		s.Grant = o.Flow + " " + o.ClientID + " " + o.TokenURL + " " + digest(o.ClientSecret.Reveal())
	}
	return s
}

// digest is a short hash of parts, for identities that must change with a
// secret without holding it.
func digest(parts ...string) string {
	h := sha256.New()
	for _, part := range parts {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Addr is host:port.
func (s Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Key identifies the account for connection pooling, circuits and holds:
// the tenant, and any change of host, port, security, mechanism, username,
// password or grant gives a new key, so a changed profile never reuses a
// connection made with the old one and no tenant ever uses a session
// another tenant logged in. Secrets enter only through a hash.
func (s Server) Key() string {
	credential := s.Password.Reveal()
	if s.Auth == tenant.AuthXOAuth2 {
		credential = s.Grant
	}
	return digest(s.Tenant, s.Host, strconv.Itoa(s.Port), string(s.Security), string(s.Auth),
		s.Username, credential, strconv.FormatBool(s.Trusted))
}
