// Package oauthtest runs a real OAuth2 token endpoint over HTTPS for tests:
// the client-credentials and refresh-token grants, short-lived access
// tokens that an SMTP test server can check, refresh-token rotation and
// revocation, and provider-style errors (invalid_client, invalid_grant).
package oauthtest

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// Options configure the endpoint.
type Options struct {
	ClientID     string
	ClientSecret string
	// RefreshTokens known at start (for the refresh_token grant).
	RefreshTokens []string
	// Lifetime of access tokens; default one hour.
	Lifetime time.Duration
	// Rotate issues a new refresh token on each refresh and retires the
	// old one, as Microsoft does.
	Rotate bool
}

// Server is a running token endpoint.
type Server struct {
	CA   *smtptest.CA
	opts Options
	srv  *httptest.Server

	mu       sync.Mutex
	refresh  map[string]bool      // valid refresh tokens
	access   map[string]time.Time // access token → expiry
	requests int
	signIn   *signIn
}

// Start runs the endpoint on 127.0.0.1 with a certificate from a test CA.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Lifetime == 0 {
		opts.Lifetime = time.Hour
	}
	s := &Server{CA: smtptest.NewCA(tb), opts: opts, refresh: map[string]bool{}, access: map[string]time.Time{}}
	for _, rt := range opts.RefreshTokens {
		s.refresh[rt] = true
	}
	s.signIn = newSignIn(tb)
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.route))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{s.CA.Leaf(tb, smtptest.LeafOptions{})}}
	s.srv.StartTLS()
	tb.Cleanup(s.srv.Close)
	return s
}

// URL is the token endpoint.
func (s *Server) URL() string { return s.srv.URL + "/token" }

// Requests counts token requests served (good or bad).
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Valid reports whether an access token was issued here and has not expired.
func (s *Server) Valid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.access[token]
	return ok && time.Now().Before(exp)
}

// Grant makes a new valid refresh token (a user consenting again).
func (s *Server) Grant() string {
	rt := "rt-" + random()
	s.mu.Lock()
	s.refresh[rt] = true
	s.mu.Unlock()
	return rt
}

// ExpireAll makes every access token issued so far expired.
func (s *Server) ExpireAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.access {
		s.access[t] = time.Now().Add(-time.Second)
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "POST a form")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.opts.ClientID || secret != s.opts.ClientSecret {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	}
	resp := map[string]any{"token_type": "Bearer", "expires_in": int(s.opts.Lifetime.Seconds())}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		if !s.redeem(w, r, id, resp) {
			return
		}
	case "client_credentials":
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if !s.refresh[rt] {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
			return
		}
		if s.opts.Rotate {
			delete(s.refresh, rt)
			next := "rt-" + random()
			s.refresh[next] = true
			resp["refresh_token"] = next
		}
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	at := "at-" + random()
	s.access[at] = time.Now().Add(s.opts.Lifetime)
	resp["access_token"] = at
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func oauthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

func random() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// RevokeAll retires every refresh token (a user withdrawing consent).
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh = map[string]bool{}
}

// Issued lists every access token issued so far.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.access))
	for t := range s.access {
		out = append(out, t)
	}
	return out
}
