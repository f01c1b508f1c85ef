package systemtest

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/oauthtest"
	"github.com/outbound-mail/outbound/internal/ratelimit"
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

// putAccount gives tenant id a profile on 127.0.0.1:port that logs in as
// acme@gmail.com.
func (s sendSetup) putAccount(t *testing.T, id string, port int) {
	t.Helper()
	in := map[string]any{"sender_name": id, "email": "acme@gmail.com", "password": tenantPass,
		"host": "127.0.0.1", "port": port, "security": "tls"}
	if r := s.do("PUT", "/v1/tenants/"+id+"/smtp", s.adminToken, in); r.status != 200 && r.status != 201 {
		t.Fatalf("PUT %s: %d %s", id, r.status, r.body)
	}
}

// circuitOpened waits until the tenant's profile shows its account's
// circuit open, and returns that last_error.
func (s sendSetup) circuitOpened(t *testing.T, tenantID string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		le, _ := s.do("GET", "/v1/tenants/"+tenantID+"/smtp", s.adminToken, nil).json(t)["last_error"].(map[string]any)
		if le["code"] == "circuit_open" {
			return le
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's circuit never opened: last_error %v", tenantID, le)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postFor queues n one-recipient messages for each tenant, in turn.
func (s sendSetup) postFor(t *testing.T, n int, tenants ...string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		for _, id := range tenants {
			msg := oneRecipient(id)
			msg["from"] = map[string]string{"email": "acme@gmail.com"}
			msg["subject"] = fmt.Sprintf("%s %d", id, i)
			ids = append(ids, s.accept(t, msg))
		}
	}
	return ids
}

// allSent waits until every message is sent and says how long that took
// since start.
func (s sendSetup) allSent(t *testing.T, ids []string, start time.Time, within time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, id := range ids {
		for {
			r := s.do("GET", "/v1/messages/"+id, s.sendToken, nil)
			if st := r.json(t)["status"]; st == "sent" {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("message %s is %v after %v: %s", id, st, within, r.body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// The noisy neighbours: one tenant's host takes connections and never
// answers, another's server takes seconds per message. Ten quiet tenants'
// messages, posted after both backlogs, still go out about as fast as they
// do alone, because neither account holds more than its sessions and as
// many waiting messages, each wait is bounded, and the silent account's
// circuit opens.
func TestNoisyNeighboursDelayNoOne(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, func(o *options) { o.workers, o.smtpTimeout = 16, 3*time.Second })
	slow := smtptest.Start(t, smtptest.Options{Users: map[string]string{"acme@gmail.com": tenantPass}, TLS: s.leaf,
		Hooks: smtptest.Hooks{Stall: func(stage string) time.Duration {
			if stage == smtptest.StageData {
				return 2 * time.Second
			}
			return 0
		}}})
	silent := smtptest.StartSilent(t)
	s.putAccount(t, "silent", silent.Port())
	s.putAccount(t, "slow", slow.Port())
	quiet := make([]string, 10)
	for i := range quiet {
		quiet[i] = fmt.Sprintf("quiet%d", i)
	}

	start := time.Now()
	alone := s.allSent(t, s.postFor(t, 10, quiet...), start, 30*time.Second)
	s.postFor(t, 200, "silent")
	s.postFor(t, 60, "slow")
	start = time.Now()
	behind := s.allSent(t, s.postFor(t, 10, quiet...), start, 30*time.Second)
	t.Logf("100 quiet messages: %v alone, %v behind a silent and a slow account", alone, behind)
	if behind > 15*time.Second {
		t.Errorf("quiet tenants waited %v behind the neighbours (alone %v)", behind, alone)
	}

	// The silent account's circuit is open: its messages wait without new
	// connections, and its profile says so.
	le := s.circuitOpened(t, "silent")
	if le["retry_at"] == nil || !strings.Contains(le["hint"].(string), "tries again at") {
		t.Fatalf("silent account's last_error: %v", le)
	}
	if m := string(s.do("GET", "/metrics", "", nil).body); !strings.Contains(m, "outbound_smtp_circuits_open 1\n") {
		t.Errorf("/metrics does not count the open circuit:\n%s", grepLines(m, "outbound_smtp_"))
	}
	opened := silent.Connections()
	time.Sleep(2 * time.Second)
	if later := silent.Connections(); later != opened {
		t.Errorf("%d more connections to the silent host while its circuit is open", later-opened)
	}
	if opened > 4 {
		t.Errorf("%d connections to the silent host before its circuit opened, want at most 4", opened)
	}
}

// A PUT of the profile closes the circuit: the waiting messages go out at
// once on the account as it now is.
func TestProfileWriteClosesTheCircuit(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, func(o *options) { o.workers, o.smtpTimeout = 8, 300*time.Millisecond })
	s.putAccount(t, "acme", smtptest.StartSilent(t).Port())
	ids := s.postFor(t, 10, "acme")
	s.circuitOpened(t, "acme")
	s.putAccount(t, "acme", s.account.Port())
	s.allSent(t, ids, time.Now(), 10*time.Second)
}

// A server slower than the message's time on its account has its session
// cut at that bound, not at the sum of its per-command timeouts.
func TestSlowServerHoldsAWorkerForBoundedTime(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Stall: func(stage string) time.Duration {
		if stage == smtptest.StageMail {
			return 20 * time.Second
		}
		return 0
	}}}, func(o *options) { o.smtpTimeout, o.messageTimeout = 30*time.Second, 500*time.Millisecond })
	s.putProfile(t, nil)
	start := time.Now()
	done := s.waitStatus(t, s.accept(t, invoice()), "deferred")
	took := time.Since(start)
	a := attempts(done)
	if len(a) == 0 {
		t.Fatalf("no attempt: %v", done)
	}
	first := a[0]
	if first["error"] != "timeout" || first["ambiguous"] == true || took > 5*time.Second {
		t.Fatalf("after %v the attempt is %v", took, first)
	}
}

// backlog is how many messages the bulk tenant has queued in the fairness
// test: 1,000, or 10,000 with OUTBOUND_TEST_LONG=1.
func backlog() int {
	if os.Getenv("OUTBOUND_TEST_LONG") != "" {
		return 10000
	}
	return 1000
}

// queueBulk queues n messages for tenant through the batch endpoint.
func (s sendSetup) queueBulk(t *testing.T, tenantID string, n int) {
	t.Helper()
	for n > 0 {
		var batch []any
		for range min(n, 100) {
			msg := oneRecipient(tenantID)
			msg["from"] = map[string]string{"email": "acme@gmail.com"}
			batch = append(batch, msg)
		}
		for _, r := range s.postBatch(t, s.sendToken, batch) {
			if r.Status != http.StatusAccepted {
				t.Fatalf("bulk message: %d %+v", r.Status, r.Problem)
			}
		}
		n -= len(batch)
	}
}

// One tenant's backlog delays another tenant's single message by a small
// amount, on an account of its own and on the default relay both share:
// the backlog's account holds only its sessions and as many waiting
// messages, the rest are set aside, and tenants of one account take turns.
func TestBacklogDelaysAnotherTenantBriefly(t *testing.T) {
	slowish := smtptest.Hooks{Stall: func(stage string) time.Duration {
		if stage == smtptest.StageData {
			return 20 * time.Millisecond // a provider tens of milliseconds away: the backlog takes a while
		}
		return 0
	}}
	s := newSendSetup(t, smtptest.Options{Hooks: slowish}, func(o *options) {
		o.workers, o.rateLimit = 16, ratelimit.Limit{PerMinute: 100000, PerDay: 1000000}
	})
	s.relay.SetHooks(slowish)
	s.putAccount(t, "bulk", s.account.Port())
	delivered := func() int { return len(s.account.Messages()) + len(s.relay.Messages()) }
	bulkQueued, quietSent := 0, 0
	// one sends a quiet tenant's message and says how many bulk messages
	// went out between its acceptance and its sending (the ones that
	// overtook it) and how many were still waiting when it was accepted.
	// Counting messages rather than timing them keeps the test honest on a
	// loaded machine: load slows the backlog and the quiet message alike.
	one := func(tenantID string) (overtook, waiting int, took time.Duration) {
		before, start := delivered(), time.Now()
		took = s.allSent(t, []string{s.accept(t, oneRecipient(tenantID))}, start, time.Minute)
		after := delivered()
		quietSent++
		return after - before - 1, bulkQueued - (before - (quietSent - 1)), took
	}
	_, _, alone := one("quiet")
	n := backlog()
	s.queueBulk(t, "bulk", n)
	bulkQueued += n
	ownOvertook, ownWaiting, ownAccount := one("quiet")
	s.do("DELETE", "/v1/tenants/bulk/smtp", s.adminToken, nil) // later bulk messages take the relay
	s.queueBulk(t, "bulk", n)
	bulkQueued += n
	relayOvertook, relayWaiting, sharedRelay := one("quiet")
	t.Logf("one message on the relay: %v alone; %v behind another account's backlog (%d overtook it of %d waiting); "+
		"%v behind the same relay's (%d overtook it of %d waiting)",
		alone, ownAccount, ownOvertook, ownWaiting, sharedRelay, relayOvertook, relayWaiting)
	// Either backlog takes at least n×20 ms over 3 sessions (6.7 s) to go
	// out, so most of it is still waiting when the quiet message comes. A
	// message that queued behind it would be overtaken by all of it; one
	// that takes its turn is overtaken by a few sessions' worth.
	for _, c := range []struct {
		name              string
		overtook, waiting int
	}{{"another account's backlog", ownOvertook, ownWaiting}, {"the same relay's backlog", relayOvertook, relayWaiting}} {
		if c.waiting < n/4 {
			t.Fatalf("behind %s only %d of %d were still waiting: the backlog went out too fast to tell", c.name, c.waiting, n)
		}
		if c.overtook > c.waiting/4 {
			t.Errorf("behind %s, %d of the %d waiting messages overtook a single message of another tenant", c.name, c.overtook, c.waiting)
		}
	}
}

// A successful verify closes the circuit too: the server answers again, and
// the waiting messages go out at once.
func TestVerifyClosesTheCircuit(t *testing.T) {
	mute := smtptest.Hooks{Stall: func(stage string) time.Duration {
		if stage == smtptest.StageGreeting {
			return time.Minute
		}
		return 0
	}}
	s := newSendSetup(t, smtptest.Options{Hooks: mute}, func(o *options) { o.workers, o.smtpTimeout = 8, 300*time.Millisecond })
	s.putAccount(t, "acme", s.account.Port())
	ids := s.postFor(t, 5, "acme")
	s.circuitOpened(t, "acme")
	s.account.SetHooks(smtptest.Hooks{})
	if r := s.do("POST", "/v1/tenants/acme/smtp/verify", s.adminToken, nil); r.json(t)["ok"] != true {
		t.Fatalf("verify: %s", r.body)
	}
	if le := s.do("GET", "/v1/tenants/acme/smtp", s.adminToken, nil).json(t)["last_error"]; le != nil {
		t.Errorf("last_error after a successful verify: %v", le)
	}
	s.allSent(t, ids, time.Now(), 10*time.Second)
}
