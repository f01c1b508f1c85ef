package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/mail"
	"sync"
	"time"

	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
)

// Config is the delivery side's settings; New fills defaults.
type Config struct {
	Workers     int
	ClaimAfter  time.Duration // reclaim entries idle this long (their worker died)
	RetryBase   time.Duration // first retry delay, doubled each time
	RetryMaxAge time.Duration // give up this long after acceptance
	QuotaHold   time.Duration // pause an account this long after a sending-quota reply
	Relay       *transport.Server
	DefaultFrom mail.Address
	Limits      message.Limits
	Consumer    string // this process's consumer name in the stream groups
}

// Profiles is the tenant profile store as delivery uses it.
type Profiles interface {
	Get(ctx context.Context, tenantID string) (tenant.Profile, error)
	SetLastError(ctx context.Context, tenantID string, version int64, e *tenant.LastError) error
}

// Service accepts messages and delivers them.
type Service struct {
	cfg      Config
	log      *slog.Logger
	queue    *queue.Queue
	profiles Profiles
	pool     *Pool

	holdMu sync.Mutex
	holds  map[string]time.Time // account key → paused until (sending quota)

	inflightMu sync.Mutex
	inflight   map[queue.Entry]struct{}

	stop     context.CancelFunc // stops taking work
	hardStop context.CancelFunc // aborts work in flight
	feeders  sync.WaitGroup
	workers  sync.WaitGroup
}

// New returns a Service; call Start to run workers.
func New(cfg Config, log *slog.Logger, q *queue.Queue, profiles Profiles, pool *Pool) *Service {
	if cfg.Workers < 0 {
		cfg.Workers = 0
	}
	if cfg.ClaimAfter <= 0 {
		cfg.ClaimAfter = time.Minute
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 30 * time.Second
	}
	if cfg.RetryMaxAge <= 0 {
		cfg.RetryMaxAge = 24 * time.Hour
	}
	if cfg.QuotaHold <= 0 {
		cfg.QuotaHold = time.Hour
	}
	return &Service{cfg: cfg, log: log, queue: q, profiles: profiles, pool: pool,
		holds: map[string]time.Time{}, inflight: map[queue.Entry]struct{}{}}
}

// Accepted is the answer to a new message.
type Accepted struct {
	ID       string
	TenantID string
	Route    string
	Status   queue.Status
	Replayed bool // an Idempotency-Key named an earlier message
}

// Accept validates req, decides its route and queues it. When it returns
// without error the message is stored in Redis and will be delivered.
func (s *Service) Accept(ctx context.Context, req *message.Request, idempotencyKey string) (Accepted, error) {
	if err := req.Validate(s.cfg.Limits); err != nil {
		return Accepted{}, err
	}
	r, err := s.resolve(ctx, req, false)
	if err != nil {
		return Accepted{}, err
	}
	if err := r.checkFrom(req); err != nil {
		return Accepted{}, err
	}
	// The payload is the request re-encoded from its parsed form, so two
	// requests that differ only in key order or spacing hash the same.
	payload, err := json.Marshal(req)
	if err != nil {
		return Accepted{}, fmt.Errorf("delivery: accept: %w", err)
	}
	sum := sha256.Sum256(payload)
	a, err := s.queue.Enqueue(ctx, queue.NewMessage{
		TenantID:       req.TenantID,
		Route:          r.name,
		MessageID:      message.NewMessageID(r.from.Email),
		Payload:        payload,
		IdempotencyKey: idempotencyKey,
		RequestHash:    hex.EncodeToString(sum[:]),
	})
	if err != nil {
		return Accepted{ID: a.ID}, err
	}
	if a.Unreplicated {
		s.log.Warn("accepted message not confirmed by the required Redis replicas in time",
			"message_id", a.ID, "tenant_id", req.TenantID)
	}
	out := Accepted{ID: a.ID, TenantID: req.TenantID, Route: r.name, Status: queue.StatusQueued, Replayed: a.Replayed}
	if a.Replayed {
		rec, err := s.queue.Get(ctx, a.ID)
		if err != nil {
			return Accepted{}, err
		}
		out.Route, out.Status = rec.Route, rec.Status
	}
	return out, nil
}

// Status returns a message's record.
func (s *Service) Status(ctx context.Context, id string) (queue.Record, error) {
	return s.queue.Get(ctx, id)
}

// TenantChanged is called after a tenant's profile was written: messages
// held because of the old profile's faults become due at once.
func (s *Service) TenantChanged(ctx context.Context, tenantID string) error {
	_, err := s.queue.WakeHeld(ctx, tenantID)
	return err
}
