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
	// Grant names where it came from (client and token endpoint): sessions
	// are pooled by grant, since the token itself changes every hour.
	Token secret.String
	Grant string
	// Trusted servers (the operator's own default relay) skip the egress
	// guard; tenant-entered ones never do.
	Trusted bool
}

// FromProfile is the server a tenant profile names. An xoauth2 profile's
// Token is still to be filled in.
func FromProfile(p tenant.Profile) Server {
	s := Server{Host: p.Host, Port: p.Port, Security: p.Security, Auth: p.Auth,
		Username: p.Username, Password: p.Password}
	if p.OAuth != nil {
		s.Grant = p.OAuth.Flow + " " + p.OAuth.ClientID + " " + p.OAuth.TokenURL
	}
	return s
}

// Addr is host:port.
func (s Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Key identifies the account for connection pooling: two tenants that use
// the same server and credentials share connections, and any change of
// host, port, security, mechanism, username or password gives a new key,
// so a changed profile never reuses a connection made with the old one.
// The password enters only through a hash.
func (s Server) Key() string {
	h := sha256.New()
	credential := s.Password.Reveal()
	if s.Auth == tenant.AuthXOAuth2 {
		credential = s.Grant
	}
	for _, part := range []string{s.Host, strconv.Itoa(s.Port), string(s.Security), string(s.Auth),
		s.Username, credential, strconv.FormatBool(s.Trusted)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
