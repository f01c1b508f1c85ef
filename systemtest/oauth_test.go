package systemtest

import (
	"crypto/x509"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/oauthtest"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// oauthSetup is a token endpoint and an SMTP server that logs in with
// XOAUTH2, checking each bearer token against the endpoint's.
type oauthSetup struct {
	*harness
	tokens  *oauthtest.Server
	account *smtptest.Server
	mu      sync.Mutex
	refused map[string]bool // access tokens the SMTP server refuses although valid
}

func newOAuthSetup(t *testing.T, topts oauthtest.Options, o options) *oauthSetup {
	t.Helper()
	s := &oauthSetup{tokens: oauthtest.Start(t, topts), refused: map[string]bool{}}
	s.account = smtptest.Start(t, smtptest.Options{Mechanisms: []string{"XOAUTH2"}, Bearer: func(user, token string) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return user == "billing@contoso.example" && s.tokens.Valid(token) && !s.refused[token]
	}})
	roots := x509.NewCertPool()
	if o.roots != nil {
		roots = o.roots.Clone() // a test's own servers, trusted as well
	}
	roots.AppendCertsFromPEM(s.account.CA.PEM())
	roots.AppendCertsFromPEM(s.tokens.CA.PEM())
	o.roots, o.allowPrivate = roots, true
	if o.workers == 0 {
		o.workers = 4
	}
	s.harness = newHarness(t, o)
	return s
}

func (s *oauthSetup) profile(oauth map[string]any) map[string]any {
	return map[string]any{"email": "billing@contoso.example", "sender_name": "Contoso", "host": "127.0.0.1",
		"port": s.account.Port(), "security": "tls", "auth": "xoauth2", "oauth": oauth}
}

func (s *oauthSetup) appGrant() map[string]any {
	return map[string]any{"flow": "client_credentials", "token_url": s.tokens.URL(), "client_id": "app",
		"client_secret": "app-secret", "scope": "https://outlook.office365.com/.default"}
}

func (s *oauthSetup) put(t *testing.T, body map[string]any) {
	t.Helper()
	if r := s.do("PUT", "/v1/tenants/contoso/smtp", s.adminToken, body); r.status != 200 && r.status != 201 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
}

func (s *oauthSetup) send(t *testing.T) string {
	t.Helper()
	in := oneRecipient("contoso")
	delete(in, "from")
	r := s.do("POST", "/v1/messages", s.sendToken, in)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	return r.json(t)["id"].(string)
}

func (s *oauthSetup) wait(t *testing.T, id, want string) map[string]any {
	t.Helper()
	return sendSetup{harness: s.harness}.waitStatus(t, id, want)
}

func TestOAuthClientCredentials(t *testing.T) {
	s := newOAuthSetup(t, oauthtest.Options{ClientID: "app", ClientSecret: "app-secret"}, options{})
	s.put(t, s.profile(s.appGrant()))

	r := s.do("POST", "/v1/tenants/contoso/smtp/verify", s.adminToken, nil)
	if body := r.json(t); body["ok"] != true || body["auth_mechanism"] != "XOAUTH2" {
		t.Fatalf("verify: %s", r.body)
	}
	var ids []string
	for range 5 {
		ids = append(ids, s.send(t))
	}
	for _, id := range ids {
		s.wait(t, id, "sent")
	}
	if n := s.tokens.Requests(); n != 1 {
		t.Fatalf("verify and 5 messages made %d token requests, want 1", n)
	}
	got := s.do("GET", "/v1/tenants/contoso/smtp", s.adminToken, nil)
	view := got.json(t)["oauth"].(map[string]any)
	if view["client_secret_set"] != true || view["client_id"] != "app" || strings.Contains(string(got.body), "app-secret") {
		t.Fatalf("profile view: %s", got.body)
	}
	for _, secret := range append(s.tokens.Issued(), "app-secret") {
		s.assertNeverAnswered(t, secret)
		assertNotInRedis(t, s.harness, secret)
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("logs hold %q", secret)
		}
	}

	// A token the server refuses is dropped and replaced once, in the same
	// attempt.
	s.refuseIssued()
	s.account.DropConnections() // the next message must log in again
	done := s.wait(t, s.send(t), "sent")
	if a := attempts(done); len(a) != 1 || s.tokens.Requests() != 2 {
		t.Fatalf("refused token: %d attempts, %d token requests: %v", len(a), s.tokens.Requests(), done)
	}
}

// refuseIssued makes the SMTP server refuse every token issued so far, as
// if revoked while unexpired.
func (s *oauthSetup) refuseIssued() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tok := range s.tokens.Issued() {
		s.refused[tok] = true
	}
}

func TestOAuthVerifyTokenFailed(t *testing.T) {
	s := newOAuthSetup(t, oauthtest.Options{ClientID: "app", ClientSecret: "app-secret"}, options{})
	grant := s.appGrant()
	grant["client_secret"] = "expired-secret"
	r := s.do("POST", "/v1/tenants/contoso/smtp/verify", s.adminToken, s.profile(grant))
	e := verifyError(t, r)
	if e["code"] != "token_failed" || !strings.Contains(e["message"].(string), "invalid_client") || !strings.Contains(e["hint"].(string), "client secret") {
		t.Fatalf("verify with a bad client secret: %v", e)
	}
	if strings.Contains(string(r.body), "expired-secret") {
		t.Fatal("response holds the secret")
	}
}

func TestOAuthRefreshFlow(t *testing.T) {
	s := newOAuthSetup(t, oauthtest.Options{ClientID: "web", ClientSecret: "web-secret", RefreshTokens: []string{"rt-first"},
		Rotate: true, Lifetime: 61500 * time.Millisecond}, options{})
	s.put(t, s.profile(map[string]any{"flow": "refresh_token", "token_url": s.tokens.URL(), "client_id": "web",
		"client_secret": "web-secret", "refresh_token": "rt-first", "scope": "https://mail.google.com/"}))
	s.wait(t, s.send(t), "sent")

	// The endpoint rotated the refresh token; after the access token
	// expires, the next refresh must use the rotated one.
	time.Sleep(1600 * time.Millisecond)
	s.wait(t, s.send(t), "sent")
	if n := s.tokens.Requests(); n != 2 {
		t.Fatalf("%d token requests, want 2 (first token, then a refresh after expiry)", n)
	}

	// Consent withdrawn: deferred with the hint, shown on the profile,
	// and sent once the operator stores a new refresh token.
	s.tokens.RevokeAll()
	time.Sleep(1600 * time.Millisecond)
	id := s.send(t)
	deferred := s.wait(t, id, "deferred")
	if a := attempts(deferred); a[0]["error"] != "token_failed" {
		t.Fatalf("attempts: %v", a)
	}
	le := s.do("GET", "/v1/tenants/contoso/smtp", s.adminToken, nil).json(t)["last_error"].(map[string]any)
	if le["code"] != "token_failed" || !strings.Contains(le["hint"].(string), "Authorize the app again") {
		t.Fatalf("last_error: %v", le)
	}
	fresh := s.tokens.Grant()
	s.put(t, s.profile(map[string]any{"flow": "refresh_token", "token_url": s.tokens.URL(), "client_id": "web",
		"client_secret": "web-secret", "refresh_token": fresh, "scope": "https://mail.google.com/"}))
	s.wait(t, id, "sent")
	for _, secret := range append(s.tokens.Issued(), "web-secret", "rt-first", fresh) {
		s.assertNeverAnswered(t, secret)
		assertNotInRedis(t, s.harness, secret)
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("logs hold %q", secret)
		}
	}
}

func TestOAuthTwoInstancesRefreshOnce(t *testing.T) {
	shared, key := redistest.Start(t), seal.NewKey()
	a := newOAuthSetup(t, oauthtest.Options{ClientID: "app", ClientSecret: "app-secret"}, options{redis: shared, sealKey: key})
	// The second instance talks to the same token endpoint and SMTP server.
	b := &oauthSetup{tokens: a.tokens, account: a.account, refused: a.refused}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(a.account.CA.PEM())
	roots.AppendCertsFromPEM(a.tokens.CA.PEM())
	b.harness = newHarness(t, options{redis: shared, sealKey: key, roots: roots, allowPrivate: true, workers: 4})
	a.put(t, a.profile(a.appGrant()))

	var ids []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			s := a
			if i%2 == 1 {
				s = b
			}
			id := s.send(t)
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		for _, l := range strings.Split(a.logs.String()+b.logs.String(), "\n") {
			if strings.Contains(l, "request failed") {
				t.Log(l)
			}
		}
		t.FailNow()
	}
	for _, id := range ids {
		a.wait(t, id, "sent")
	}
	if n := a.tokens.Requests(); n != 1 {
		t.Fatalf("two instances made %d token requests, want 1", n)
	}
}
