package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"sync"
	"time"

	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
	"github.com/outbound-mail/outbound/internal/validation"
)

// Config is the delivery side's settings, all of them required (see New).
type Config struct {
	Workers     int
	ClaimAfter  time.Duration // reclaim entries idle this long (their worker died)
	RetryBase   time.Duration // first retry delay, doubled each time
	RetryMaxAge time.Duration // give up this long after the message first fell due (see queue.Record.FirstDue)
	QuotaHold   time.Duration // pause an account this long after a sending-quota reply
	// MessageTimeout bounds one message's time on its account: waiting for
	// a session, dialling and the transaction together.
	MessageTimeout time.Duration
	Relay          *transport.Server
	DefaultFrom    mail.Address
	Limits         message.Limits
	RateLimit      ratelimit.Limit // per tenant, unless its profile has its own
	Consumer       string          // this process's consumer name in the stream groups
}

// Service accepts messages and delivers them.
type Service struct {
	cfg       Config
	limits    tenant.Limits // the service's, which a profile's own or its provider's replace
	log       *slog.Logger
	queue     Queue
	profiles  Profiles
	dialer    Verifier
	pool      *Pool
	limiter   Pacer
	tokens    Tokens
	suppress  Suppressions
	metrics   Metrics // never nil: noMetrics when none are kept
	listeners Listeners

	holdMu sync.Mutex
	holds  map[string]quotaHold // account key → paused until (sending quota)

	stopWatch func() error // ends the tenant store's change notices (see tenantChanged)
	watchOnce sync.Once

	circuits *circuits
	asides   *asides
	parking  *parking

	inflightMu sync.Mutex
	inflight   map[queue.Entry]struct{}

	// unrecorded holds outcomes Redis did not take (see finish).
	unrecorded *unrecorded
	// finishPatience bounds how long an outcome Redis does not take is
	// retried before it is left to unrecorded.
	finishPatience time.Duration
	// testPanic, set only by this package's tests, is called with each
	// composed message while it holds a session (see transact): the seam
	// through which a test makes a delivery panic.
	testPanic func(composed []byte)

	stop     context.CancelFunc // stops taking work
	hardStop context.CancelFunc // aborts work in flight
	feeders  sync.WaitGroup
	workers  sync.WaitGroup
	toucher  sync.WaitGroup // the claim refresh, which outlives the feeders
}

// New returns a Service; call Start to run workers. Every duration and
// rate of cfg must be set: their defaults live in one place, config's
// environment variables (OUTBOUND_CLAIM_AFTER and the rest), and a zero
// here would mean reclaiming at once or retrying without a pause.
func New(cfg Config, d Deps) (*Service, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	limits := tenant.Limits{RatePerMinute: cfg.RateLimit.PerMinute, RatePerDay: cfg.RateLimit.PerDay}
	if d.Pool != nil {
		limits.MaxConnections = d.Pool.maxPerKey
	}
	s := &Service{cfg: cfg, limits: limits, log: d.Log, queue: d.Queue, profiles: d.Profiles, dialer: d.Dialer, pool: d.Pool,
		limiter: d.Limiter, tokens: d.Tokens, suppress: d.Suppress, metrics: d.Metrics, listeners: d.Listeners,
		holds: map[string]quotaHold{}, circuits: newCircuits(), asides: newAsides(), parking: newParking(),
		inflight: map[queue.Entry]struct{}{}, unrecorded: newUnrecorded(), finishPatience: time.Minute}
	s.stopWatch = d.Profiles.Watch(s.tenantChanged)
	s.metrics.Gauge("outbound_smtp_circuits_open",
		"Accounts this process stopped connecting to after their servers failed to answer several times in a row.",
		func() float64 { return float64(s.openCircuits()) })
	s.metrics.Gauge("outbound_smtp_accounts_held", "Accounts this process holds after a sending-quota reply.",
		func() float64 { return float64(s.heldAccounts()) })
	return s, nil
}

// Limits are the service's limits a tenant's sending falls under (its
// rate and its sessions per account; see tenant.Limits.InForce), as
// delivery applies them: the API shows and guards these, not a copy.
func (s *Service) Limits() tenant.Limits { return s.limits }

// check refuses a Config with a setting left unset.
func (cfg Config) check() error {
	if cfg.Workers < 0 {
		return fmt.Errorf("workers %d below zero", cfg.Workers)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"claim after", cfg.ClaimAfter}, {"retry base", cfg.RetryBase}, {"retry max age", cfg.RetryMaxAge},
		{"quota hold", cfg.QuotaHold}, {"message timeout", cfg.MessageTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("%s %v is not a duration", d.name, d.v)
		}
	}
	if cfg.RateLimit.PerMinute <= 0 || cfg.RateLimit.PerDay <= 0 {
		return fmt.Errorf("rate limit %d a minute, %d a day: both must be set", cfg.RateLimit.PerMinute, cfg.RateLimit.PerDay)
	}
	return nil
}

// Accepted is the answer to a new message.
type Accepted struct {
	ID       string
	TenantID string
	Route    string
	Status   queue.Status
	Replayed bool // an Idempotency-Key named an earlier message
	// RateLimit is the tenant's budget after this message (zero for a
	// replay, which spends nothing).
	RateLimit ratelimit.Result
}

// Accept validates req, decides its route and queues it. When it returns
// without error the message is stored in Redis and will be delivered.
// body is the JSON req was decoded from, kept as the stored payload.
func (s *Service) Accept(ctx context.Context, req *message.Request, body []byte, idempotencyKey string) (Accepted, error) {
	if err := req.Validate(s.cfg.Limits); err != nil {
		return Accepted{}, err
	}
	r, err := s.resolve(ctx, req, false)
	if err != nil {
		return Accepted{}, err
	}
	if err := r.admits(req); err != nil {
		return Accepted{}, err
	}
	var sendAt time.Time
	if req.SendAt != nil {
		sendAt = *req.SendAt
		if sendAt.After(time.Now().Add(maxSchedule)) {
			var verr validation.Error
			verr.Add("send_at", "too_far", "at most 30 days ahead")
			return Accepted{}, &verr
		}
	}
	cost := req.RecipientCount()
	lim, err := r.affords("to", cost)
	if err != nil {
		return Accepted{}, err
	}

	// An idempotency key is checked against a hash of the request
	// re-encoded from its parsed form, so two requests that differ only in
	// key order or spacing hash the same. Without a key nothing is
	// compared, and the body is stored as received: it decodes to the
	// same request, and re-encoding every body is measurable
	// (docs/measurements.md, "Hashing idempotent requests only").
	var requestHash string
	if idempotencyKey != "" {
		canonical, err := json.Marshal(req)
		if err != nil {
			return Accepted{}, fmt.Errorf("delivery: accept: %w", err)
		}
		sum := sha256.Sum256(canonical)
		requestHash = hex.EncodeToString(sum[:])
	}
	return s.enqueue(ctx, queue.NewMessage{
		TenantID:       req.TenantID,
		Route:          r.name,
		MessageID:      message.NewMessageID(r.from.Email),
		Payload:        body,
		IdempotencyKey: idempotencyKey,
		RequestHash:    requestHash,
		SendAt:         sendAt,
		Meta:           meta(req),
		Cost:           cost,
		Limit:          lim,
		Tags:           req.Tags,
		Recipients:     req.Recipients(),
	})
}

// RateUsage is what the tenant has left of its per-minute and per-day
// recipient windows, in that order, under the limits in force for its
// profile (as Accept spends them), read without spending.
func (s *Service) RateUsage(ctx context.Context, tenantID string) ([]ratelimit.Result, error) {
	p, found, _, err := s.profiles.Load(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("delivery: rate usage of %s: %w", tenantID, err)
	}
	var profile *tenant.Profile
	if found {
		profile = &p
	}
	l := s.limits.InForce(profile)
	res, err := s.limiter.Peek(ctx, s.queue.RateWindows(tenantID, ratelimit.Limit{PerMinute: l.RatePerMinute, PerDay: l.RatePerDay})...)
	if err != nil {
		return nil, fmt.Errorf("delivery: rate usage of %s: %w", tenantID, err)
	}
	return res, nil
}

// admits refuses a message its route does not take now, whichever door
// it came in by: a From other than the tenant's account's, or any
// message while the tenant is paused. from holds what routing reads of
// the message (see resolve).
func (r route) admits(from *message.Request) error {
	if err := r.checkFrom(from); err != nil {
		return err
	}
	if r.status.Paused() {
		return &tenant.PausedError{Reason: r.status.Reason}
	}
	return nil
}

// affords checks a message's n distinct recipients, what the rate limits
// count, against what the tenant may ever send at once and what its
// provider takes in one message, and returns the rate it spends from.
// field names the recipients in a refusal.
func (r route) affords(field string, n int) (ratelimit.Limit, error) {
	lim := ratelimit.Limit{PerMinute: r.limits.RatePerMinute, PerDay: r.limits.RatePerDay}
	if n > lim.PerMinute || n > lim.PerDay {
		// It could never fit, however long the caller waited.
		var verr validation.Error
		verr.Add(field, "exceeds_rate_limit", fmt.Sprintf("%d recipients is more than the tenant may send at once (%d per minute, %d per day)",
			n, lim.PerMinute, lim.PerDay))
		return lim, &verr
	}
	return lim, r.checkRecipients(field, n)
}

// enqueue stores and queues m in one step: idempotency (a repeat spends
// nothing and answers the first message), the rate budget, the record
// and the queue entry.
func (s *Service) enqueue(ctx context.Context, m queue.NewMessage) (Accepted, error) {
	a, err := s.queue.Enqueue(ctx, m)
	if errors.As(err, new(*ratelimit.DeniedError)) {
		s.metrics.RateLimited(m.TenantID)
	}
	if err != nil {
		return Accepted{ID: a.ID}, err
	}
	if a.Replayed {
		return s.replayed(ctx, a.ID)
	}
	s.metrics.Message("accepted", m.Route, m.TenantID)
	if a.Unreplicated {
		s.log.Warn("accepted message not confirmed by the required Redis replicas in time",
			"message_id", a.ID, "tenant_id", m.TenantID)
	}
	return Accepted{ID: a.ID, TenantID: m.TenantID, Route: m.Route, Status: a.Status, RateLimit: a.RateLimit}, nil
}

// maxSchedule is how far ahead send_at may be.
const maxSchedule = 30 * 24 * time.Hour

// meta is what events carry of the request: its tags and metadata.
func meta(req *message.Request) []byte {
	if len(req.Tags) == 0 && len(req.Metadata) == 0 {
		return nil
	}
	b, _ := json.Marshal(struct {
		Tags     []string          `json:"tags,omitempty"`
		Metadata map[string]string `json:"metadata,omitempty"`
	}{req.Tags, req.Metadata})
	return b
}

// Cancel takes back a message not yet being sent.
func (s *Service) Cancel(ctx context.Context, id string) error { return s.queue.Cancel(ctx, id) }

// replayed answers a repeated request with the first message's state.
func (s *Service) replayed(ctx context.Context, id string) (Accepted, error) {
	rec, err := s.queue.Get(ctx, id)
	if err != nil {
		return Accepted{}, err
	}
	return Accepted{ID: id, TenantID: rec.TenantID, Route: rec.Route, Status: rec.Status, Replayed: true}, nil
}

// Status returns a message's record.
func (s *Service) Status(ctx context.Context, id string) (queue.Record, error) {
	return s.queue.Get(ctx, id)
}

// openCircuits is how many accounts this replica stopped connecting to
// because their servers failed to answer (see circuits).
func (s *Service) openCircuits() int { return s.circuits.count(time.Now()) }

// heldAccounts is how many accounts this replica holds after a
// sending-quota reply.
func (s *Service) heldAccounts() int {
	now := time.Now()
	s.holdMu.Lock()
	defer s.holdMu.Unlock()
	n := 0
	for _, h := range s.holds {
		if h.until.After(now) {
			n++
		}
	}
	return n
}
