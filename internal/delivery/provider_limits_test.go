package delivery

import (
	"context"
	jsonv1 "encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
	"github.com/outbound-mail/outbound/internal/validation"
)

// providerRig is a Service with room to spare (12 workers, 10 sessions an
// account, 1000 recipients a message) whose tenant acme sends through its
// own account on the rig's SMTP server with the profile in.
func providerRig(t *testing.T, r *rig, in tenant.Input) *Service {
	t.Helper()
	rdb := r.client(t)
	key, err := seal.ParseKey(seal.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	profiles := tenant.NewStore(rdb, sealer)
	in.Email, in.Password = "billing@acme.example", secret.New("pw")
	in.Host, in.Port, in.Security = "127.0.0.1", r.smtp.Port(), tenant.SecurityTLS
	p, err := tenant.Build("acme", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := profiles.Put(context.Background(), p, 0); err != nil {
		t.Fatal(err)
	}
	dialer := &transport.Dialer{AllowPrivate: true, RootCAs: r.smtp.CA.Pool(), HeloName: "outbound.test",
		ConnectTimeout: 5 * time.Second, CommandTimeout: 5 * time.Second, DataTimeout: 5 * time.Second}
	svc, err := New(Config{
		Workers: 12, ClaimAfter: time.Minute, RetryBase: 100 * time.Millisecond, RetryMaxAge: time.Hour,
		QuotaHold: time.Hour, MessageTimeout: 5 * time.Minute,
		DefaultFrom: mail.Address{Address: "no-reply@platform.example"},
		Limits:      message.Limits{MaxRecipients: 1000},
		RateLimit:   ratelimit.Limit{PerMinute: 10000, PerDay: 100000},
		Consumer:    t.Name(),
	}, Deps{Log: slog.New(slog.NewJSONHandler(r.logs, nil)), Queue: queue.New(rdb, queue.Options{Partitions: 1, Retention: time.Hour,
		IdempotencyTTL: time.Hour}), Profiles: profiles, Dialer: dialer, Pool: NewPool(dialer.Dial, 10, time.Minute), Limiter: ratelimit.New(rdb)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Shutdown(ctx)
	})
	return svc
}

// sessionPeak counts the transactions the server is in at once: each
// holds its final reply for hold.
func sessionPeak(hold time.Duration) (smtptest.Hooks, *atomic.Int32) {
	var now, peak atomic.Int32
	return smtptest.Hooks{Data: func(smtptest.Message) *smtp.SMTPError {
		raise(&peak, now.Add(1))
		time.Sleep(hold)
		now.Add(-1)
		return nil
	}}, &peak
}

func sendAll(t *testing.T, svc *Service, r *rig, n int, timeout time.Duration) {
	t.Helper()
	svc.Start()
	for i := range n {
		accept(t, svc, fmt.Sprintf("m%d", i), "hello")
	}
	r.smtp.WaitMessages(t, n, timeout)
}

// A profile naming microsoft365 holds at most 3 sessions to its account
// (Exchange Online refuses a fourth), though the service allows 10.
func TestMicrosoft365HoldsThreeSessions(t *testing.T) {
	hooks, peak := sessionPeak(300 * time.Millisecond)
	r := newRig(t, hooks)
	// Its own pace, so only the connection cap is measured.
	svc := providerRig(t, r, tenant.Input{Provider: "microsoft365", PacePerMinute: 60000})
	sendAll(t, svc, r, 12, 20*time.Second)
	if got := peak.Load(); got > 3 {
		t.Errorf("%d sessions at once to a microsoft365 account, want at most 3", got)
	}
}

// The profile's own max_connections replaces the provider's, above it too.
func TestOwnConnectionCapOverridesTheProvider(t *testing.T) {
	hooks, peak := sessionPeak(300 * time.Millisecond)
	r := newRig(t, hooks)
	svc := providerRig(t, r, tenant.Input{Provider: "microsoft365", PacePerMinute: 60000, MaxConnections: 6})
	sendAll(t, svc, r, 12, 20*time.Second)
	if got := peak.Load(); got <= 3 || got > 6 {
		t.Errorf("%d sessions at once with max_connections 6, want 4 to 6", got)
	}
}

// A profile naming microsoft365 sends 30 messages a minute: one every 2 s.
func TestMicrosoft365Paces30AMinute(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	r := newRig(t, smtptest.Hooks{Data: func(smtptest.Message) *smtp.SMTPError {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		return nil
	}})
	svc := providerRig(t, r, tenant.Input{Provider: "microsoft365"})
	sendAll(t, svc, r, 2, 10*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if gap := at[1].Sub(at[0]); gap < 1800*time.Millisecond {
		t.Errorf("second message %v after the first, want about 2s (30 a minute)", gap)
	}
}

// A message with more recipients than Google takes in one message over
// SMTP (100) is refused at accept, with a field code the caller can act
// on, though the service allows 1000; 100 are taken.
func TestGoogleRefuses101RecipientsAtAccept(t *testing.T) {
	r := newRig(t, smtptest.Hooks{})
	svc := providerRig(t, r, tenant.Input{Provider: "google"})
	req := func(n int) *message.Request {
		m := &message.Request{TenantID: "acme", Subject: "many", Text: "hello"}
		for i := range n {
			m.Bcc = append(m.Bcc, message.Address{Email: fmt.Sprintf("r%d@example.com", i)})
		}
		return m
	}
	m := req(101)
	body, _ := jsonv1.Marshal(m)
	_, err := svc.Accept(context.Background(), m, body, "")
	var verr *validation.Error
	if !errors.As(err, &verr) || !verr.Has("to") || verr.Fields[0].Code != codeExceedsProviderLimit {
		t.Fatalf("101 recipients to a google account: %v, want a validation error exceeds_provider_limit on to", err)
	}
	m = req(100)
	body, _ = jsonv1.Marshal(m)
	if _, err := svc.Accept(context.Background(), m, body, ""); err != nil {
		t.Fatalf("100 recipients to a google account: %v", err)
	}
}
