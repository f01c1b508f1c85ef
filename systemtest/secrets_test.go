package systemtest

import (
	"net/http"
	"testing"

	"github.com/outbound-mail/outbound/internal/oauthtest"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// fieldCode is the code the problem lists for field ("" when none).
// wantSecretRequired fails unless r is a 422 naming each field with
// secret_required.
func wantSecretRequired(t *testing.T, what string, r response, fields ...string) {
	t.Helper()
	if r.status != http.StatusUnprocessableEntity || r.code(t) != "validation_failed" {
		t.Errorf("%s: %d %s", what, r.status, r.body)
		return
	}
	for _, f := range fields {
		if c := fieldCode(t, r, f); c != "secret_required" {
			t.Errorf("%s: %s has code %q, want secret_required: %s", what, f, c, r.body)
		}
	}
}

// A stored password goes only to the host and port it was given for: a
// profile naming another host or port must carry the password again, on
// PUT and on verify with a body, and the other server sees no login.
func TestStoredPasswordStaysWithItsServer(t *testing.T) {
	ca := smtptest.NewCA(t)
	leaf := ca.Leaf(t, smtptest.LeafOptions{Hosts: []string{"smtp.acme.example", "smtp.elsewhere.example", "127.0.0.1"}})
	users := map[string]string{"acme@gmail.com": "acme-password"}
	own := smtptest.Start(t, smtptest.Options{Users: users, TLS: &leaf})
	// The other server would accept the password: only the rule keeps it away.
	other := smtptest.Start(t, smtptest.Options{Users: users, TLS: &leaf})
	h := newHarness(t, options{roots: ca.Pool(), allowPrivate: true,
		resolver: loopbackResolver{"smtp.acme.example": true, "smtp.elsewhere.example": true}})
	path := "/v1/tenants/acme/smtp"

	in := profileFor(own, "acme-password")
	in["host"] = "smtp.acme.example"
	if r := h.do("PUT", path, h.adminToken, in); r.status != http.StatusCreated {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	delete(in, "password")

	// Same host and port without a password: the stored one is kept.
	in["sender_name"] = "Acme Renamed"
	if r := h.do("PUT", path, h.adminToken, in); r.status != http.StatusOK || r.json(t)["password_set"] != true {
		t.Fatalf("same destination without password: %d %s", r.status, r.body)
	}
	if r := h.do("POST", path+"/verify", h.adminToken, in); r.json(t)["ok"] != true {
		t.Fatalf("verify same destination without password: %s", r.body)
	}

	moved := map[string]map[string]any{
		"host":          {"host": "smtp.elsewhere.example", "port": own.Port()},
		"port":          {"host": "smtp.acme.example", "port": other.Port()},
		"host and port": {"host": "smtp.elsewhere.example", "port": other.Port()},
	}
	for name, dest := range moved {
		t.Run(name, func(t *testing.T) {
			body := profileFor(own, "")
			delete(body, "password")
			body["host"], body["port"] = dest["host"], dest["port"]
			wantSecretRequired(t, "PUT", h.do("PUT", path, h.adminToken, body), "password")
			wantSecretRequired(t, "verify", h.do("POST", path+"/verify", h.adminToken, body), "password")
		})
	}
	if n := other.AuthAttempts(); n != 0 {
		t.Fatalf("the other server saw %d logins with the stored password", n)
	}
	if got := h.do("GET", path, h.adminToken, nil).json(t); got["host"] != "smtp.acme.example" || got["version"] != float64(2) {
		t.Fatalf("a refused PUT changed the profile: %v", got)
	}

	// Given again, the password goes to the new server.
	in["host"], in["port"], in["password"] = "smtp.elsewhere.example", other.Port(), "acme-password"
	if r := h.do("PUT", path, h.adminToken, in); r.status != http.StatusOK {
		t.Fatalf("moved with the password: %d %s", r.status, r.body)
	}
	if r := h.do("POST", path+"/verify", h.adminToken, nil); r.json(t)["ok"] != true || other.Auths() != 1 {
		t.Fatalf("verify after moving with the password: %s (%d logins)", r.body, other.Auths())
	}
}

// The OAuth secrets are bound to the token endpoint and client they were
// given for, and (through the access tokens they mint) to the SMTP server.
func TestStoredOAuthSecretsStayWithTheirEndpoint(t *testing.T) {
	// Another endpoint that knows the same client, trusted like the first:
	// only the rule keeps the stored secrets from reaching it.
	other := oauthtest.Start(t, oauthtest.Options{ClientID: "web", ClientSecret: "web-secret", RefreshTokens: []string{"rt-1"}})
	s := newOAuthSetup(t, oauthtest.Options{ClientID: "web", ClientSecret: "web-secret", RefreshTokens: []string{"rt-1"}},
		options{roots: other.CA.Pool()})
	grant := func() map[string]any {
		return map[string]any{"flow": "refresh_token", "token_url": s.tokens.URL(), "client_id": "web",
			"scope": "https://mail.google.com/"}
	}
	withSecrets := grant()
	withSecrets["client_secret"], withSecrets["refresh_token"] = "web-secret", "rt-1"
	s.put(t, s.profile(withSecrets))
	path := "/v1/tenants/contoso/smtp"

	// Same endpoint, client and server without secrets: the stored ones are kept.
	s.put(t, s.profile(grant()))
	if r := s.do("POST", path+"/verify", s.adminToken, s.profile(grant())); r.json(t)["ok"] != true {
		t.Fatalf("verify without secrets, nothing moved: %s", r.body)
	}

	cases := map[string]func(p map[string]any){
		"token_url": func(p map[string]any) { p["oauth"].(map[string]any)["token_url"] = other.URL() },
		"client_id": func(p map[string]any) { p["oauth"].(map[string]any)["client_id"] = "web2" },
		"host":      func(p map[string]any) { p["host"] = "localhost" },
		"port":      func(p map[string]any) { p["port"] = 1 },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			p := s.profile(grant())
			change(p)
			wantSecretRequired(t, "PUT", s.do("PUT", path, s.adminToken, p), "oauth.client_secret", "oauth.refresh_token")
			wantSecretRequired(t, "verify", s.do("POST", path+"/verify", s.adminToken, p), "oauth.client_secret", "oauth.refresh_token")
		})
	}
	// Only one secret given again: the other is still refused.
	p := s.profile(grant())
	p["oauth"].(map[string]any)["token_url"] = other.URL()
	p["oauth"].(map[string]any)["refresh_token"] = "rt-1"
	r := s.do("POST", path+"/verify", s.adminToken, p)
	wantSecretRequired(t, "verify with the refresh token only", r, "oauth.client_secret")
	if c := fieldCode(t, r, "oauth.refresh_token"); c != "" {
		t.Errorf("the given refresh token is listed as %q", c)
	}
	if n := other.Requests(); n != 0 {
		t.Fatalf("the other token endpoint received %d requests with the stored secrets", n)
	}
	if view := s.do("GET", path, s.adminToken, nil).json(t)["oauth"].(map[string]any); view["token_url"] != s.tokens.URL() {
		t.Fatalf("a refused PUT changed the profile: %v", view)
	}
}
