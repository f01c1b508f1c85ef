package delivery

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/oauth2"

	"github.com/outbound-mail/outbound/internal/oauth"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/suppression"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
)

// Deps are the parts a Service works with. Each is what delivery needs
// of it, declared here; the service's own packages provide them
// (*queue.Queue, *tenant.Store, *transport.Dialer, *ratelimit.Limiter,
// *oauth.Tokens, *suppression.Store, *metrics.Metrics, *webhook.Store).
type Deps struct {
	Log      *slog.Logger
	Queue    Queue
	Profiles Profiles
	Dialer   Verifier // for verify; deliveries dial through Pool
	Pool     *Pool
	Limiter  Pacer
	Tokens   Tokens // may be nil when no profile logs in with OAuth2
	Suppress Suppressions
	Metrics  Metrics // nil: none are kept
	// Listeners says which outcomes a webhook listens for; nil: all, and
	// every outcome's event is recorded.
	Listeners Listeners
}

// Queue is the durable queue as delivery uses it: every part below.
type Queue interface {
	Intake
	Feed
	Claims
	Finisher
	Retries
	Consumers
}

// Intake takes new messages and answers for them (Accept, Status,
// Cancel).
type Intake interface {
	Enqueue(ctx context.Context, m queue.NewMessage) (queue.Accepted, error)
	Get(ctx context.Context, id string) (queue.Record, error)
	Cancel(ctx context.Context, id string) error
	// RateWindows are the tenant's sending windows Enqueue spends from.
	RateWindows(tenantID string, lim ratelimit.Limit) []ratelimit.Window
}

// Feed is where workers take entries from: the stream's partitions, read
// by this replica's consumer, and the entries of consumers that stalled.
type Feed interface {
	Partitions() int
	Read(ctx context.Context, p int, consumer string, count int, block time.Duration) ([]queue.Entry, error)
	Reclaim(ctx context.Context, p int, consumer string, minIdle time.Duration, count int) ([]queue.Entry, error)
}

// Claims starts the delivery of entries read, keeps their claims fresh
// while they are sent, and gives back those not started.
type Claims interface {
	Begin(ctx context.Context, es []queue.Entry) ([]queue.Started, error)
	Touch(ctx context.Context, p int, consumer string, streamIDs []string) error
	Release(ctx context.Context, e queue.Entry) error
}

// Finisher records how a delivery ended (see finish).
type Finisher interface {
	Finish(ctx context.Context, e queue.Entry, tenantID string, out queue.Outcome) error
}

// Retries moves waiting messages back to the stream: those due, and a
// tenant's held ones when its profile changes.
type Retries interface {
	MoveDue(ctx context.Context, p, limit int) (int, error)
	WakeHeld(ctx context.Context, tenantID string) (int, error)
}

// Consumers forgets the consumers stopped replicas left in the stream
// groups.
type Consumers interface {
	PruneConsumers(ctx context.Context, p int, idle time.Duration) (int, error)
}

// Profiles is the tenant store as delivery uses it.
type Profiles interface {
	Load(ctx context.Context, tenantID string) (p tenant.Profile, found bool, st tenant.Status, err error)
	SetLastError(ctx context.Context, tenantID string, version int64, e *tenant.LastError) error
	// Watch has fn told of every change of a tenant, on every replica
	// (see tenant.Store.Watch).
	Watch(fn func(context.Context, tenant.Change)) (stop func() error)
}

// Verifier tests an account: connect, TLS, login, quit (Service.Verify).
type Verifier interface {
	Verify(ctx context.Context, srv transport.Server) (transport.Verified, error)
}

// Pacer spaces a tenant account's messages (pace_per_minute); a
// *ratelimit.DeniedError says how long the next must wait. Peek reads
// windows without spending (RateUsage).
type Pacer interface {
	Pace(ctx context.Context, key string, perMinute int) (ratelimit.Result, error)
	Peek(ctx context.Context, ws ...ratelimit.Window) ([]ratelimit.Result, error)
}

// Tokens gets OAuth2 access tokens for profiles that log in with one:
// cached per profile version, or fetched afresh for a profile being
// verified before it is stored; Forget drops one a server refused.
type Tokens interface {
	Token(ctx context.Context, g oauth.Grant) (secret.String, error)
	Fetch(ctx context.Context, o tenant.OAuth) (*oauth2.Token, error)
	Forget(ctx context.Context, g oauth.Grant) error
}

// Suppressions is the tenant's suppression list: which recipients are on
// it, and hard bounces added to it.
type Suppressions interface {
	Filter(ctx context.Context, tenantID string, emails []string) (map[string]suppression.Entry, error)
	Add(ctx context.Context, tenantID string, e suppression.Entry) (suppression.Entry, error)
}

// Metrics counts messages and attempts, and reads delivery's gauges at
// each scrape.
type Metrics interface {
	Message(event, route, tenantID string)
	RateLimited(tenantID string)
	Attempt(route string, ok, ambiguous bool, d time.Duration)
	Gauge(name, help string, read func() float64)
}

// Listeners reports whether any webhook wants an event type for a tenant.
type Listeners interface {
	Listens(ctx context.Context, tenantID, eventType string) (bool, error)
}

// noMetrics is Metrics when none are kept.
type noMetrics struct{}

func (noMetrics) Message(string, string, string)            {}
func (noMetrics) RateLimited(string)                        {}
func (noMetrics) Attempt(string, bool, bool, time.Duration) {}
func (noMetrics) Gauge(string, string, func() float64)      {}
