package systemtest

import (
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/oauthtest"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
)

// These tests are about what a change of a tenant (its profile written or
// deleted, its sending paused or resumed, its grant rotated, its account
// answering again) does to the mail and the sessions delivery holds for it.

// slowRetries makes a deferred message wait ten minutes, far beyond any
// test's patience: a message that goes within seconds was woken.
func slowRetries(o *options) { o.retryBase = 10 * time.Minute }

// waitOpen waits until srv has n connections open.
func waitOpen(t *testing.T, srv *smtptest.Server, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for srv.OpenConnections() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the account has %d sessions open, want %d", srv.OpenConnections(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s sendSetup) deleteProfile(t *testing.T) {
	t.Helper()
	if r := s.do("DELETE", "/v1/tenants/acme/smtp", s.adminToken, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE profile: %d %s", r.status, r.body)
	}
}

// A message held for the tenant's account (its login refused) goes through
// the default relay as soon as the profile is deleted, not at its next
// retry.
func TestDeletedProfileSendsItsHeldMessagesNow(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, slowRetries)
	s.putProfile(t, map[string]any{"password": "wrong"})
	id := s.accept(t, invoice())
	s.waitStatus(t, id, "deferred")

	s.deleteProfile(t)
	if done := s.waitStatus(t, id, "sent"); done["route"] != "default" {
		t.Fatalf("sent on route %v, want default", done["route"])
	}
}

// A session logged in with a deleted profile's password is closed at
// once, not left pooled until the idle timeout.
func TestDeletedProfileClosesItsSessions(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	s.waitStatus(t, s.accept(t, invoice()), "sent")
	waitOpen(t, s.account, 1, time.Second) // pooled for the next message

	s.deleteProfile(t)
	waitOpen(t, s.account, 0, 3*time.Second)
	if done := s.waitStatus(t, s.accept(t, invoice()), "sent"); done["route"] != "default" {
		t.Fatalf("after DELETE: route %v", done["route"])
	}
	if n := len(s.account.Messages()); n != 1 {
		t.Fatalf("the deleted account received %d messages, want 1", n)
	}
}

// A new password retires the sessions the old one logged in; a write that
// keeps the account (a new sender name) keeps them.
func TestProfileWriteRetiresOnlyTheOldAccountsSessions(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{Users: map[string]string{"acme@gmail.com": tenantPass}})
	s.putProfile(t, nil)
	s.waitStatus(t, s.accept(t, invoice()), "sent")
	waitOpen(t, s.account, 1, time.Second)

	s.putProfile(t, map[string]any{"sender_name": "Acme Trading LLC"})
	s.waitStatus(t, s.accept(t, invoice()), "sent")
	if n := s.account.Connections(); n != 1 {
		t.Fatalf("a write that kept the account took %d connections, want 1", n)
	}

	s.account.SetUsers(map[string]string{"acme@gmail.com": "new-password"})
	s.putProfile(t, map[string]any{"password": "new-password"})
	waitOpen(t, s.account, 0, 3*time.Second)
	s.waitStatus(t, s.accept(t, invoice()), "sent")
	if n := s.account.Connections(); n != 2 {
		t.Fatalf("%d connections, want a second one for the new password", n)
	}
}

// Replicas share nothing but Redis: a profile deleted through one closes
// the sessions another holds for it.
func TestDeletedProfileClosesSessionsOnEveryReplica(t *testing.T) {
	shared, key := redistest.Start(t), seal.NewKey()
	// The first replica only answers HTTP; the second sends.
	s := newSendSetup(t, smtptest.Options{}, func(o *options) {
		o.redis, o.sealKey, o.workers = shared, key, 0
	})
	roots := x509.NewCertPool()
	roots.AddCert(s.leaf.Leaf) // the setup's servers all present it
	newHarness(t, options{redis: shared, sealKey: key, workers: 4, allowPrivate: true, roots: roots, relay: s.relayServer()})
	s.putProfile(t, nil)
	s.waitStatus(t, s.accept(t, invoice()), "sent")
	waitOpen(t, s.account, 1, time.Second)

	s.deleteProfile(t)
	waitOpen(t, s.account, 0, 3*time.Second)
}

// Messages held after a sending-quota reply wait for the quota, but not
// once the tenant names another account: they go on it at once, and the
// old account is no longer counted as held.
func TestQuotaHeldMessagesGoWhenTheTenantSwitchesAccount(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Data: func(smtptest.Message) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 4, 5}, Message: "Daily user sending quota exceeded."}
	}}})
	s.putProfile(t, nil)
	id := s.accept(t, invoice())
	s.waitStatus(t, id, "deferred")

	other := smtptest.Start(t, smtptest.Options{Users: map[string]string{"acme@gmail.com": tenantPass}, TLS: s.leaf})
	s.putProfile(t, map[string]any{"port": other.Port()})
	if done := s.waitStatus(t, id, "sent"); done["route"] != "tenant" {
		t.Fatalf("route %v", done["route"])
	}
	if n := len(other.Messages()); n != 1 {
		t.Fatalf("the new account received %d messages", n)
	}
	if m := string(s.do("GET", "/metrics", "", nil).body); !strings.Contains(m, "outbound_smtp_accounts_held 0\n") {
		t.Errorf("the old account is still counted held:\n%s", grepLines(m, "outbound_smtp_accounts_held"))
	}
}

// An account that answers again wakes the messages held for it: when a
// new message gets through after the login was refused, the held one goes
// too, without waiting out its backoff.
func TestAccountThatAnswersAgainWakesHeldMessages(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{Users: map[string]string{"acme@gmail.com": "not-yet"}}, slowRetries)
	s.putProfile(t, nil)
	held := s.accept(t, invoice())
	s.waitStatus(t, held, "deferred")

	s.account.SetUsers(map[string]string{"acme@gmail.com": tenantPass}) // fixed at the provider's end
	s.waitStatus(t, s.accept(t, invoice()), "sent")
	s.waitStatus(t, held, "sent")
}

// A refresh token the provider rotates is the same consent to the same
// mailbox: the next message goes on the session already logged in.
func TestRotatedRefreshTokenKeepsTheSession(t *testing.T) {
	s := newOAuthSetup(t, oauthtest.Options{ClientID: "web", ClientSecret: "web-secret", RefreshTokens: []string{"rt-first"},
		Rotate: true}, options{})
	s.put(t, s.profile(map[string]any{"flow": "refresh_token", "token_url": s.tokens.URL(), "client_id": "web",
		"client_secret": "web-secret", "refresh_token": "rt-first", "scope": "https://mail.google.com/"}))
	s.wait(t, s.send(t), "sent")
	s.wait(t, s.send(t), "sent")
	if c, a := s.account.Connections(), s.account.Auths(); c != 1 || a != 1 {
		t.Fatalf("two messages after a rotation took %d connections and %d logins, want 1 and 1", c, a)
	}
}

// relayServer is the setup's default relay, for a second replica.
func (s sendSetup) relayServer() *transport.Server {
	return &transport.Server{Host: "127.0.0.1", Port: s.relay.Port(), Security: tenant.SecurityStartTLS,
		Auth: tenant.AuthPlain, Username: "relay", Password: secret.New("relay-pass"), Trusted: true}
}
