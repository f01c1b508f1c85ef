package delivery

import (
	"bytes"
	"context"
	jsonv1 "encoding/json"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/logtest"
	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
)

// rig is a real redis-server and a real SMTP server (the default relay)
// on which any number of Services run, each as a replica would: its own
// Redis client, queue and consumer name.
type rig struct {
	redis *redistest.Server
	smtp  *smtptest.Server
	logs  *logtest.Buffer
}

func newRig(t *testing.T, hooks smtptest.Hooks, redisOpts ...redistest.Option) *rig {
	t.Helper()
	return &rig{
		redis: redistest.Start(t, redisOpts...),
		smtp:  smtptest.Start(t, smtptest.Options{AcceptAnyAuth: true, Hooks: hooks}),
		logs:  &logtest.Buffer{},
	}
}

// client is a Redis client that gives up quickly, as production's does,
// so a test with Redis stopped does not wait on retries.
func (r *rig) client(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.redis.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
		WriteTimeout: 2 * time.Second, PoolTimeout: 2 * time.Second, MaxRetries: 0})
	t.Cleanup(func() { c.Close() })
	return c
}

// service is a replica named consumer, not yet started; it is shut down
// when the test ends.
func (r *rig) service(t *testing.T, consumer string, claimAfter time.Duration) (*Service, *queue.Queue) {
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
	q := queue.New(rdb, queue.Options{Partitions: 1, Retention: time.Hour, IdempotencyTTL: time.Hour})
	dialer := &transport.Dialer{AllowPrivate: true, RootCAs: r.smtp.CA.Pool(), HeloName: "outbound.test",
		ConnectTimeout: 5 * time.Second, CommandTimeout: 5 * time.Second, DataTimeout: 5 * time.Second}
	log := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("consumer", consumer)
	svc, err := New(Config{
		Workers: 2, ClaimAfter: claimAfter, RetryBase: 100 * time.Millisecond, RetryMaxAge: time.Hour,
		QuotaHold: time.Hour, MessageTimeout: 5 * time.Minute,
		Relay: &transport.Server{Host: "127.0.0.1", Port: r.smtp.Port(), Security: tenant.SecurityTLS,
			Auth: tenant.AuthPlain, Username: "relay", Password: secret.New("relay-pass"), Trusted: true},
		DefaultFrom: mail.Address{Address: "no-reply@platform.example"},
		RateLimit:   ratelimit.Limit{PerMinute: 1000, PerDay: 100000},
		Consumer:    consumer,
	}, Deps{Log: log, Queue: q, Profiles: tenant.NewStore(rdb, sealer), Dialer: dialer,
		Pool: NewPool(dialer.Dial, 3, time.Minute), Limiter: ratelimit.New(rdb)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Shutdown(ctx)
	})
	return svc, q
}

// accept queues a message with the given subject and text.
func accept(t *testing.T, svc *Service, subject, text string) string {
	t.Helper()
	req := &message.Request{TenantID: "acme", To: []message.Address{{Email: "bob@example.com"}}, Subject: subject, Text: text}
	body, err := jsonv1.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	a, err := svc.Accept(context.Background(), req, body, "")
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	return a.ID
}

// waitStatus polls the message's record until it has status want; Redis
// errors (a restart) are waited out.
func waitStatus(t *testing.T, q *queue.Queue, id string, want queue.Status, timeout time.Duration) queue.Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var rec queue.Record
	var err error
	for time.Now().Before(deadline) {
		if rec, err = q.Get(context.Background(), id); err == nil && rec.Status == want {
			return rec
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("message %s: status %q (err %v) after %v, want %q; error %q", id, rec.Status, err, timeout, want, rec.Error)
	return rec
}

// received counts the messages the server took whose subject is subject.
func received(s *smtptest.Server, subject string) int {
	n := 0
	for _, m := range s.Messages() {
		if bytes.Contains(m.Data, []byte("Subject: "+subject+"\r\n")) {
			n++
		}
	}
	return n
}

// A delivery that panics, while holding a session, fails its message
// with internal_error, logged with its stack but without the message's
// content; the session's place in the pool is given back, and the worker
// lives on to deliver the next message.
func TestPanicFailsTheMessageAndWorkersLiveOn(t *testing.T) {
	r := newRig(t, smtptest.Hooks{})
	svc, q := r.service(t, "replica-1", 2*time.Second)
	svc.cfg.Workers = 1 // the next message must be delivered by the worker that panicked
	svc.testPanic = func(composed []byte) {
		if bytes.Contains(composed, []byte("Subject: poison")) {
			var m map[string]int
			m["boom"]++ // a nil map: a real runtime panic
		}
	}
	svc.Start()
	// More poisoned messages than the account has sessions (the pool's 3):
	// a panic that kept its session would leave none for the next message.
	for range 4 {
		poisoned := accept(t, svc, "poison", "the secret body text")
		rec := waitStatus(t, q, poisoned, queue.StatusFailed, 10*time.Second)
		if !strings.HasPrefix(rec.Error, CodeInternalError+":") {
			t.Errorf("error %q, want the code %s", rec.Error, CodeInternalError)
		}
		if n := len(rec.Attempts); n != 1 || rec.Attempts[0].Error != CodeInternalError {
			t.Errorf("attempts %+v, want one with error %s", rec.Attempts, CodeInternalError)
		}
	}
	next := accept(t, svc, "next", "hello")
	waitStatus(t, q, next, queue.StatusSent, 10*time.Second)
	if n := received(r.smtp, "next"); n != 1 || len(r.smtp.Messages()) != 1 {
		t.Errorf("next message received %d times, %d messages in all", n, len(r.smtp.Messages()))
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "delivery panicked") || !strings.Contains(logs, "assignment to entry in nil map") ||
		!strings.Contains(logs, "service_test.go") {
		t.Errorf("no panic with its stack in the log:\n%s", logs)
	}
	if strings.Contains(logs, "secret body text") {
		t.Errorf("the log holds the message's text:\n%s", logs)
	}
}

// A message whose workers all died before recording an outcome (simulated
// by reading and beginning it as five dying consumers) is failed with
// delivery_abandoned by the next replica that takes it, without a send.
func TestMessageBegunTooOftenIsAbandoned(t *testing.T) {
	r := newRig(t, smtptest.Hooks{})
	svc, q := r.service(t, "survivor", 300*time.Millisecond)
	ctx := context.Background()
	id := accept(t, svc, "crashes everyone", "hello")
	for i := range maxBegins {
		var es []queue.Entry
		var err error
		if i == 0 {
			es, err = q.Read(ctx, 0, "dying-0", 1, noBlock)
		} else {
			time.Sleep(30 * time.Millisecond)
			es, err = q.Reclaim(ctx, 0, "dying", 20*time.Millisecond, 1)
		}
		if err != nil || len(es) != 1 {
			t.Fatalf("take %d: %v %v", i, es, err)
		}
		if started, err := q.Begin(ctx, es); err != nil || len(started) != 1 || started[0].Begun != i+1 {
			t.Fatalf("begin %d: %+v %v", i, started, err)
		}
	}
	svc.Start()
	rec := waitStatus(t, q, id, queue.StatusFailed, 10*time.Second)
	if !strings.HasPrefix(rec.Error, CodeDeliveryAbandoned+":") {
		t.Errorf("error %q, want the code %s", rec.Error, CodeDeliveryAbandoned)
	}
	if n := len(r.smtp.Messages()); n != 0 {
		t.Errorf("the server received %d messages, want none", n)
	}
	evs, err := q.ReadEvents(ctx, 0, "t", 10, noBlock)
	if err != nil || len(evs) != 1 || evs[0].Type != "message.failed" || evs[0].MessageID != id {
		t.Errorf("events %+v %v, want one message.failed", evs, err)
	}
}

// During a shutdown, a send that outlasts the claim timeout keeps its
// claim: another replica does not take the message and send it again.
func TestShutdownKeepsClaimsFreshUntilTheLastSendEnds(t *testing.T) {
	stalled := make(chan struct{})
	var once sync.Once
	r := newRig(t, smtptest.Hooks{Stall: func(stage string) time.Duration {
		stall := time.Duration(0)
		if stage == smtptest.StageData {
			once.Do(func() { stall = 2500 * time.Millisecond; close(stalled) })
		}
		return stall
	}})
	first, q := r.service(t, "leaving", time.Second)
	first.Start()
	id := accept(t, first, "slow", "hello")
	<-stalled
	second, _ := r.service(t, "staying", time.Second)
	second.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	waitStatus(t, q, id, queue.StatusSent, 5*time.Second)
	time.Sleep(1500 * time.Millisecond) // a resend by the other replica would have arrived by now
	if n := received(r.smtp, "slow"); n != 1 {
		t.Errorf("the server received the message %d times, want once", n)
	}
}

// redisDownAfterSend stops Redis once the server has the first message's
// body and before it replies, so the send succeeds and its outcome cannot
// be written. It returns the hooks and a function that waits for that,
// then keeps Redis down for downFor and restarts it.
func redisDownAfterSend(t *testing.T, r **rig, downFor time.Duration) (smtptest.Hooks, func()) {
	seen, stopped := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hooks := smtptest.Hooks{Data: func(smtptest.Message) *smtp.SMTPError {
		once.Do(func() { close(seen); <-stopped })
		return nil
	}}
	return hooks, func() {
		<-seen
		(*r).redis.Stop(t)
		close(stopped)
		time.Sleep(downFor)
		(*r).redis.Restart(t)
	}
}

// A message sent while Redis went down is recorded sent once Redis is
// back, by retrying the outcome: it is not taken again and resent.
func TestOutcomeWrittenAfterRedisComesBack(t *testing.T) {
	var r *rig
	hooks, outage := redisDownAfterSend(t, &r, 2*time.Second) // longer than the claim timeout
	r = newRig(t, hooks, redistest.WithAOF())
	svc, q := r.service(t, "replica-1", time.Second)
	svc.Start()
	id := accept(t, svc, "during outage", "hello")
	outage()
	waitStatus(t, q, id, queue.StatusSent, 15*time.Second)
	time.Sleep(2500 * time.Millisecond) // a reclaim and resend would have arrived by now
	if n := received(r.smtp, "during outage"); n != 1 {
		t.Errorf("the server received the message %d times, want once", n)
	}
}

// An outcome that could not be written within finishPatience is
// remembered: when this replica takes the entry back, it records the
// outcome and does not send again.
func TestUnwrittenOutcomeRecordedWithoutSendingAgain(t *testing.T) {
	var r *rig
	hooks, outage := redisDownAfterSend(t, &r, 2*time.Second)
	r = newRig(t, hooks, redistest.WithAOF())
	svc, q := r.service(t, "replica-1", time.Second)
	svc.finishPatience = 300 * time.Millisecond
	svc.Start()
	id := accept(t, svc, "remembered", "hello")
	outage()
	waitStatus(t, q, id, queue.StatusSent, 15*time.Second)
	time.Sleep(1500 * time.Millisecond)
	if n := received(r.smtp, "remembered"); n != 1 {
		t.Errorf("the server received the message %d times, want once", n)
	}
	if !strings.Contains(r.logs.String(), "recorded an outcome Redis did not take earlier") {
		t.Errorf("the outcome was not recorded from memory:\n%s", r.logs.String())
	}
}

// An entry reclaimed while a worker of this replica is still on it (Redis
// was away too long for its claim to be refreshed, and the worker retries
// its outcome) is left to that worker: begun again, it would be sent again.
func TestReclaimLeavesEntriesThisReplicaIsOn(t *testing.T) {
	r := newRig(t, smtptest.Hooks{})
	svc, q := r.service(t, "replica-1", time.Second)
	ctx := context.Background()
	id := accept(t, svc, "in flight", "hello")
	es, err := q.Read(ctx, 0, "replica-1", 1, noBlock)
	if err != nil || len(es) != 1 {
		t.Fatalf("read: %+v %v", es, err)
	}
	if _, err := q.Begin(ctx, es); err != nil {
		t.Fatal(err)
	}
	svc.inflight[es[0]] = struct{}{}
	slots := make(chan struct{}, 1)
	slots <- struct{}{} // the slot the reclaimer took for it
	stopping, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	svc.dispatch(stopping, es, make(chan job), slots)
	if len(slots) != 0 {
		t.Errorf("the entry's slot was not given back")
	}
	// Begun again, and handed back at the stop, it would be queued anew.
	if rec, err := q.Get(ctx, id); err != nil || rec.Status != queue.StatusSending {
		t.Errorf("record %+v %v, want still sending", rec, err)
	}
	started, err := q.Begin(ctx, es)
	if err != nil || len(started) != 1 || started[0].Begun != 2 {
		t.Errorf("begun %+v %v, want once before this", started, err)
	}
}

// Messages kept aside in memory when a replica stops go back to the
// stream at once: another replica sends them long before their claims
// would have run out, and each once.
func TestShutdownHandsBackMessagesKeptAside(t *testing.T) {
	r := newRig(t, smtptest.Hooks{Stall: func(stage string) time.Duration {
		if stage == smtptest.StageData {
			return 300 * time.Millisecond
		}
		return 0
	}})
	first, q := r.service(t, "leaving", time.Minute) // a claim the test would never outwait
	first.cfg.Workers = 12                           // more than the relay's 3 sessions and 3 waiting
	first.Start()
	var ids []string
	for i := range 12 {
		ids = append(ids, accept(t, first, fmt.Sprint("aside ", i), "hello"))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		first.parking.mu.Lock()
		kept := first.parking.bytes
		first.parking.mu.Unlock()
		if kept > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no message was kept aside")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	second, _ := r.service(t, "staying", time.Minute)
	second.Start()
	for _, id := range ids {
		waitStatus(t, q, id, queue.StatusSent, 15*time.Second)
	}
	for i := range 12 {
		if n := received(r.smtp, fmt.Sprint("aside ", i)); n != 1 {
			t.Errorf("message %d received %d times, want once", i, n)
		}
	}
}
