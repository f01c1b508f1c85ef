package api_test

import (
	"net/http"
	"testing"

	"github.com/outbound-mail/outbound/internal/oauthtest"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// sessionsOf reports the connection each received message came on.
func sessionsOf(msgs []smtptest.Message) []int {
	ids := make([]int, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ConnID
	}
	return ids
}

// Two tenants that entered the same account (server, username and
// password) each log in for themselves: a session one tenant logged in is
// never lent to another.
func TestTenantsNeverShareAPasswordSession(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	for _, id := range []string{"acme", "globex"} {
		in := map[string]any{"sender_name": id, "email": "acme@gmail.com", "password": tenantPass,
			"host": "127.0.0.1", "port": s.account.Port(), "security": "tls"}
		if r := s.do("PUT", "/v1/tenants/"+id+"/smtp", s.adminToken, in); r.status != 201 {
			t.Fatalf("PUT %s: %d %s", id, r.status, r.body)
		}
	}
	for _, id := range []string{"acme", "globex"} {
		msg := oneRecipient(id)
		msg["from"] = map[string]string{"email": "acme@gmail.com"}
		s.waitStatus(t, s.accept(t, msg), "sent")
	}
	got := s.account.Messages()
	if len(got) != 2 || got[0].ConnID == got[1].ConnID || s.account.Auths() != 2 {
		t.Fatalf("sessions %v and %d logins for two tenants' messages; want two sessions, two logins",
			sessionsOf(got), s.account.Auths())
	}
}

// Two tenants on one OAuth app with the same mailbox name: the second
// tenant's message must not go out over the session the first tenant's
// grant logged in.
func TestTenantsNeverShareAnOAuthSession(t *testing.T) {
	s := newOAuthSetup(t, oauthtest.Options{ClientID: "app", ClientSecret: "app-secret"}, options{})
	for _, id := range []string{"contoso", "fabrikam"} {
		if r := s.do("PUT", "/v1/tenants/"+id+"/smtp", s.adminToken, s.profile(s.appGrant())); r.status != 201 {
			t.Fatalf("PUT %s: %d %s", id, r.status, r.body)
		}
	}
	for _, id := range []string{"contoso", "fabrikam"} {
		in := oneRecipient(id)
		delete(in, "from")
		r := s.do("POST", "/v1/messages", s.sendToken, in)
		if r.status != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", id, r.status, r.body)
		}
		s.wait(t, r.json(t)["id"].(string), "sent")
	}
	got := s.account.Messages()
	if len(got) != 2 || got[0].ConnID == got[1].ConnID || s.account.Auths() != 2 {
		t.Fatalf("sessions %v and %d logins for two tenants' messages; want two sessions, two logins",
			sessionsOf(got), s.account.Auths())
	}
}
