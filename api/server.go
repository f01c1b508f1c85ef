// Package api is Outbound's HTTP interface: Echo routes, authentication,
// JSON in and out, and problem+json errors. It speaks HTTP only; the work
// is done by the domain packages it is given.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/metrics"
	"github.com/outbound-mail/outbound/internal/suppression"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
)

// ProfileStore keeps tenant SMTP profiles.
type ProfileStore interface {
	Get(ctx context.Context, tenantID string) (tenant.Profile, error)
	Put(ctx context.Context, p tenant.Profile, expectVersion int64) (tenant.Profile, error)
	Delete(ctx context.Context, tenantID string, expectVersion int64) error
}

// Verifier tests an SMTP account without sending mail. stored says the
// profile is the stored one (its cached OAuth2 token may be used).
type Verifier interface {
	Verify(ctx context.Context, p tenant.Profile, stored bool) (transport.Verified, error)
}

// Pinger reports whether storage answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config is what the HTTP layer needs to know.
type Config struct {
	Keys            apikey.Set
	MaxMessageBytes int64 // composed size; the JSON body limit follows from it
	ReadyTimeout    time.Duration
	// Limits are the service's own; a tenant's admin key may not raise a
	// profile's above them (or above the profile's own, where it has any).
	Limits tenant.Limits
}

// SendingStatus pauses and resumes tenants.
type SendingStatus interface {
	GetStatus(ctx context.Context, tenantID string) (tenant.Status, error)
	SetStatus(ctx context.Context, tenantID string, st tenant.Status) (tenant.Status, error)
}

// Suppressions are the tenants' do-not-send lists.
type Suppressions interface {
	Add(ctx context.Context, tenantID string, e suppression.Entry) (suppression.Entry, error)
	Get(ctx context.Context, tenantID, email string) (suppression.Entry, error)
	Remove(ctx context.Context, tenantID, email string) error
	List(ctx context.Context, tenantID, after string, limit int) ([]suppression.Entry, error)
	// For a tenant's own admin: entries a bounce added stay (suppression.ErrBounced).
	AddUnlessBounced(ctx context.Context, tenantID string, e suppression.Entry) (suppression.Entry, error)
	RemoveUnlessBounced(ctx context.Context, tenantID, email string) error
}

// Deps are what the handlers work with.
type Deps struct {
	Log          *slog.Logger
	Ready        Pinger
	Profiles     ProfileStore
	Status       SendingStatus
	Verifier     Verifier
	Messages     MessageService
	Suppressions Suppressions
	Webhooks     Webhooks
	Connect      ConnectLinks
	Metrics      *metrics.Metrics // may be nil: no /metrics
	Activity     Activity         // the listings and stats
	Tenants      TenantDirectory
}

// Server holds the handlers' dependencies.
type Server struct {
	Deps
	cfg      Config
	log      *slog.Logger
	echo     *echo.Echo
	patterns map[string]bool // every route's path pattern: the metric's route labels
}

// New builds the HTTP handler.
func New(cfg Config, d Deps) *Server {
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = time.Second
	}
	s := &Server{Deps: d, cfg: cfg, log: d.Log}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	// A panic becomes a 500 problem, logged, instead of a dropped connection.
	e.Use(requestID, s.logRequests, middleware.Recover())
	s.echo = e
	s.routes()
	s.patterns = map[string]bool{}
	for _, r := range e.Routes() {
		s.patterns[r.Path] = true
	}
	return s
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Body limits. A message body carries base64 attachments at about the size
// they take in the composed message, plus JSON overhead.
const profileBodyLimit = 64 << 10

func (s *Server) messageBodyLimit() int64 { return s.cfg.MaxMessageBytes + 1<<20 }

// routes lists every endpoint, in the order of openapi.yaml.
func (s *Server) routes() {
	e := s.echo
	admin := s.requireScope(apikey.ScopeAdmin)
	send := s.requireScope(apikey.ScopeSend)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if s.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(s.Metrics.Handler()))
	}

	e.GET("/v1/messages", s.listMessages, send)
	e.POST("/v1/messages", s.postMessage, send, limitBody(s.messageBodyLimit()))
	e.POST("/v1/messages/batch", s.postBatch, send, limitBody(s.messageBodyLimit()))
	e.GET("/v1/messages/:id", s.getMessage, send)
	e.DELETE("/v1/messages/:id", s.cancelMessage, send)

	e.GET("/v1/tenants", s.listTenants, admin, requireOperator("list the tenants"))
	e.GET("/v1/tenants/:tenant/smtp", s.getProfile, admin)
	e.PUT("/v1/tenants/:tenant/smtp", s.putProfile, admin, limitBody(profileBodyLimit))
	e.DELETE("/v1/tenants/:tenant/smtp", s.deleteProfile, admin)
	e.POST("/v1/tenants/:tenant/smtp/verify", s.verifyProfile, admin, limitBody(profileBodyLimit))
	e.POST("/v1/tenants/:tenant/connect", s.createConnectLink, admin, limitBody(profileBodyLimit))
	e.GET("/v1/tenants/:tenant/status", s.getStatus, admin)
	e.PUT("/v1/tenants/:tenant/status", s.putStatus, admin, requireOperator("pause or resume a tenant"), limitBody(profileBodyLimit))
	e.GET("/v1/tenants/:tenant/suppressions", s.listSuppressions, admin)
	e.GET("/v1/tenants/:tenant/suppressions/:email", s.getSuppression, admin)
	e.PUT("/v1/tenants/:tenant/suppressions/:email", s.putSuppression, admin, limitBody(profileBodyLimit))
	e.DELETE("/v1/tenants/:tenant/suppressions/:email", s.deleteSuppression, admin)

	webhooks := requireOperator("use webhooks: they span tenants")
	e.GET("/v1/webhooks", s.listWebhooks, admin, webhooks)
	e.GET("/v1/webhooks/:name", s.getWebhook, admin, webhooks)
	e.PUT("/v1/webhooks/:name", s.putWebhook, admin, webhooks, limitBody(profileBodyLimit))
	e.DELETE("/v1/webhooks/:name", s.deleteWebhook, admin, webhooks)
	e.GET("/v1/webhooks/:name/deliveries", s.webhookDeliveries, admin, webhooks)
	e.POST("/v1/webhooks/:name/deliveries/:id/retry", s.retryWebhookDelivery, admin, webhooks)

	e.GET("/v1/stats", s.getStats, admin, requireOperator("read the service's stats: they span tenants"))
}

// healthz is liveness: the process serves.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is readiness: storage answers within a short bound, so a replica
// that lost Redis leaves the load balancer instead of hanging requests.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.ReadyTimeout)
	defer cancel()
	if err := s.Ready.Ping(ctx); err != nil {
		p := problem(codeUnavailable, "storage is unreachable")
		p.header = http.Header{"Retry-After": {"1"}}
		return p
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
