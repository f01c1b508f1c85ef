// Package app is the one constructor of the whole service: the HTTP API,
// the delivery workers and the webhook dispatcher over one Redis. `outbound
// serve`, `outbound dev` and the system tests all build the service with
// New, so what the tests run is what production runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only on Config.DebugListen
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/api"
	"github.com/outbound-mail/outbound/internal/config"
	"github.com/outbound-mail/outbound/internal/connect"
	"github.com/outbound-mail/outbound/internal/console"
	"github.com/outbound-mail/outbound/internal/delivery"
	"github.com/outbound-mail/outbound/internal/egress"
	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/metrics"
	"github.com/outbound-mail/outbound/internal/oauth"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/suppression"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
	"github.com/outbound-mail/outbound/internal/webhook"
)

// cacheTTL bounds how long a replica may act on a profile, suppression or
// webhook another replica changed; a replica's own writes invalidate at once.
const cacheTTL = 30 * time.Second

// App is the wired service. Run it once; Close releases it when it is not run.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	rdb      redis.UniversalClient
	ownRedis bool // New connected rdb, so closing it is ours to do
	delivery *delivery.Service
	webhooks *webhook.Dispatcher
	handler  http.Handler
	console  *console.Console
	http     *http.Server
	smtp     *submissionDoor // nil unless a submission listener is configured
	closers  []func() error  // caches' subscriptions

	closeOnce sync.Once
}

// New wires the service from cfg. It starts nothing and does not reach
// Redis yet: Run starts the workers and serves.
func New(cfg config.Config, log *slog.Logger, opts ...Option) (*App, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	a := &App{cfg: cfg, log: log, rdb: o.redis}
	if a.rdb == nil {
		rdb, err := newRedis(cfg.RedisURL, cfg.RedisCluster)
		if err != nil {
			return nil, err
		}
		a.rdb, a.ownRedis = rdb, true
	}
	sealer, err := seal.New(cfg.SecretKey, cfg.PreviousKeys...)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	consumer := o.consumer
	if consumer == "" {
		consumer = consumerName()
	}
	rdb := a.rdb

	profiles := tenant.NewStore(rdb, sealer)
	suppressions := suppression.New(rdb)
	hooks := webhook.NewStore(rdb, sealer)
	a.closers = append(a.closers, profiles.UseCache(cacheTTL), suppressions.UseCache(cacheTTL), hooks.UseCache(cacheTTL))

	q := queue.New(rdb, queue.Options{Partitions: cfg.QueuePartitions, Retention: cfg.Retention, IdempotencyTTL: cfg.IdempotencyTTL,
		WaitReplicas: cfg.RedisWaitReplicas, WaitTimeout: cfg.RedisWaitTimeout})
	dialer := &transport.Dialer{
		Resolver:       o.resolver,
		AllowPrivate:   cfg.AllowPrivateNetworks,
		RootCAs:        cfg.SMTPRoots,
		HeloName:       cfg.HeloName,
		ConnectTimeout: cfg.SMTPConnectTimeout,
		CommandTimeout: cfg.SMTPCommandTimeout,
		DataTimeout:    cfg.SMTPDataTimeout,
		NoPipelining:   o.noPipelining,
	}
	pool := delivery.NewPool(dialer.Dial, cfg.SMTPMaxConnections, cfg.SMTPIdleTimeout)
	// OAuth token endpoints and webhook URLs are tenant input like SMTP
	// hosts: the same guard, the same resolver.
	guard := &egress.Guard{AllowPrivate: cfg.AllowPrivateNetworks, Resolver: o.resolver}
	tokens := oauth.New(rdb, sealer, guard.HTTPClient(cfg.SMTPRoots, 15*time.Second), profiles.SetRefreshToken)

	m := metrics.New(cfg.MetricsTenantLabels)
	m.Gauge("outbound_smtp_connections_open", "SMTP sessions open (idle or in use) in this process.",
		func() float64 { return float64(pool.Open()) })
	m.WatchQueue(q, log)
	a.delivery, err = delivery.New(delivery.Config{
		Workers:        cfg.Workers,
		ClaimAfter:     cfg.ClaimAfter,
		RetryBase:      cfg.RetryBase,
		RetryMaxAge:    cfg.RetryMaxAge,
		QuotaHold:      cfg.QuotaHold,
		MessageTimeout: cfg.SMTPMessageTimeout,
		Relay:          relayServer(cfg.DefaultRelay),
		DefaultFrom:    cfg.DefaultFrom,
		Limits:         message.Limits{MaxRecipients: cfg.MaxRecipients, MaxMessageBytes: cfg.MaxMessageBytes},
		RateLimit:      ratelimit.Limit{PerMinute: cfg.RatePerMinute, PerDay: cfg.RatePerDay},
		Consumer:       consumer,
	}, delivery.Deps{Log: log, Queue: q, Profiles: profiles, Dialer: dialer, Pool: pool, Limiter: ratelimit.New(rdb),
		Tokens: tokens, Suppress: suppressions, Metrics: m, Listeners: hooks})
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("app: %w", err)
	}

	postTimeout := o.webhookTimeout
	if postTimeout <= 0 {
		postTimeout = 10 * time.Second
	}
	a.webhooks = webhook.NewDispatcher(webhook.Options{Consumer: consumer, RetryBase: o.webhookRetryBase, Timeout: postTimeout, Dropped: m},
		hooks, q, rdb, guard.HTTPClient(cfg.SMTPRoots, postTimeout), log)

	readiness := ready{q}
	if cfg.Submission.Enabled() {
		if a.smtp, err = newSubmission(cfg, a, m); err != nil {
			a.Close()
			return nil, err
		}
		readiness = append(readiness, a.smtp.srv)
	}

	links := connect.NewLinks(rdb, cfg.PublicURL, cfg.ConnectReturnURLs)
	apiHandler := api.New(api.Config{Keys: cfg.APIKeys, MaxMessageBytes: cfg.MaxMessageBytes, Limits: a.delivery.Limits()}, api.Deps{Log: log, Ready: readiness,
		Profiles: profiles, Status: profiles, Verifier: a.delivery, Messages: a.delivery, Suppressions: suppressions, Webhooks: hooks,
		Connect: links, Metrics: m, Activity: q, Tenants: profiles})
	page := connect.NewPage(links, profiles, a.delivery, log)
	if r, ok := o.resolver.(connect.MXResolver); ok {
		// The resolver tests give the service answers MX lookups too.
		page.ResolveMX(r)
	}
	if apps := signInApps(cfg, o.signIn); len(apps) > 0 {
		page.SignIn(guard.HTTPClient(cfg.SMTPRoots, 15*time.Second), apps...)
	}
	operatorConsole := console.New(console.Deps{Redis: rdb, Keys: cfg.APIKeys, Activity: q, Tenants: profiles, Messages: a.delivery,
		Verifier: a.delivery, Rates: a.delivery, Suppressions: suppressions, Webhooks: hooks, Log: log}, cfg.PublicURL)
	if o.consoleLinks {
		operatorConsole.EnableSignInLinks()
	}
	a.console = operatorConsole
	a.handler = withPages(apiHandler, page, operatorConsole)
	a.http = &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: cfg.HTTPReadHeaderTimeout,
		// Long enough for a 25 MB body on a modest link (the default 2m),
		// short enough that slow clients cannot hold connections forever.
		ReadTimeout:  cfg.HTTPReadTimeout,
		WriteTimeout: cfg.HTTPReadTimeout + 30*time.Second,
		IdleTimeout:  cfg.HTTPIdleTimeout,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return a, nil
}

// SubmissionAddrs are the addresses the SMTP submission listeners took
// (STARTTLS, implicit TLS), nil for one not configured.
func (a *App) SubmissionAddrs() (startTLS, implicitTLS net.Addr) {
	if a.smtp == nil {
		return nil, nil
	}
	if a.smtp.startTLS != nil {
		startTLS = a.smtp.startTLS.Addr()
	}
	if a.smtp.implicit != nil {
		implicitTLS = a.smtp.implicit.Addr()
	}
	return startTLS, implicitTLS
}

// withPages serves the connect page and the operator's console beside the
// API. The pages are not API routes: the API answers JSON and logs request
// paths, the connect page's path holds its link's secret, and the console
// signs in with a session cookie, not a bearer token.
func withPages(apiHandler, connectPage, consolePages http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, connect.Prefix) {
			connectPage.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == console.Prefix || strings.HasPrefix(r.URL.Path, console.Prefix+"/") {
			consolePages.ServeHTTP(w, r)
			return
		}
		apiHandler.ServeHTTP(w, r)
	})
}

// ConsoleSignInLink is a path that opens the console signed in as the
// admin key named keyName, once and within console.LinkTTL; an error
// unless New was given WithConsoleSignInLinks.
func (a *App) ConsoleSignInLink(ctx context.Context, keyName string) (string, error) {
	return a.console.SignInLink(ctx, keyName)
}

// Handler is the HTTP API and the connect page, for callers that serve
// them themselves.
func (a *App) Handler() http.Handler { return a.handler }

// Run starts the delivery workers and the webhook dispatcher, serves HTTP
// on ln (and SMTP submission on the listeners New opened) until ctx ends, then shuts down in reverse order of start within
// cfg.ShutdownGrace: stop HTTP and SMTP submission, drain workers, stop webhook POSTs, close
// caches and Redis. It returns nil after a shutdown ctx asked for.
func (a *App) Run(ctx context.Context, ln net.Listener) error {
	if a.cfg.DebugListen != "" {
		// Profiling for operators, on its own (private) address: the
		// default mux holds only net/http/pprof's handlers.
		go func() {
			if err := http.ListenAndServe(a.cfg.DebugListen, http.DefaultServeMux); err != nil {
				a.log.Warn("debug listener", "error", err)
			}
		}()
	}
	a.delivery.Start()
	// With no workers this replica only accepts; webhooks go out from
	// the replicas that deliver.
	if a.cfg.Workers > 0 {
		a.webhooks.Start()
	}
	errc := make(chan error, 1)
	go func() { errc <- a.http.Serve(ln) }()
	if a.smtp != nil {
		a.smtp.serve(a.log)
	}
	a.log.Info("outbound serving", "addr", ln.Addr().String(), "workers", a.cfg.Workers,
		"default_relay", a.cfg.DefaultRelay != nil)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	a.log.Info("shutting down", "grace", a.cfg.ShutdownGrace.String())
	grace, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownGrace)
	defer cancel()
	// Both doors close at once: neither's drain eats the other's grace.
	smtpDone := make(chan error, 1)
	if a.smtp != nil {
		go func() { smtpDone <- a.smtp.srv.Shutdown(grace) }()
	} else {
		smtpDone <- nil
	}
	if err := a.http.Shutdown(grace); err != nil {
		a.log.Warn("http shutdown", "error", err)
	}
	if err := <-smtpDone; err != nil {
		a.log.Warn("smtp submission shutdown cut sessions short; their clients still hold what was not answered", "error", err)
	}
	// Delivery and webhooks stop together too: each waits for its
	// readers' blocking reads to come back (up to a second), and neither
	// needs the other first, since the events delivery writes stay in
	// their stream for whichever replica reads them next.
	webhooksDone := make(chan error, 1)
	go func() { webhooksDone <- a.webhooks.Shutdown(grace) }()
	if err := a.delivery.Shutdown(grace); err != nil {
		a.log.Warn("delivery shutdown cut in-flight sends short; they will be retried", "error", err)
	}
	if err := <-webhooksDone; err != nil {
		a.log.Warn("webhook shutdown cut posts short; they will be retried", "error", err)
	}
	a.Close()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("app: serve: %w", serveErr)
	}
	return nil
}

// Close stops the caches' subscriptions and closes the Redis client New
// made (not one given with WithRedis). Run calls it; call it yourself only
// for an App that is not run. Calling it again does nothing.
func (a *App) Close() {
	a.closeOnce.Do(func() {
		if a.smtp != nil {
			a.smtp.close() // a no-op after Run's shutdown closed them
		}
		for _, c := range a.closers {
			_ = c()
		}
		if a.ownRedis {
			a.rdb.Close()
		}
	})
}

// newRedis connects with short timeouts: when Redis is down the API must
// answer 503 quickly, not hang.
func newRedis(url string, cluster bool) (redis.UniversalClient, error) {
	const dial, read, write, pool = 2 * time.Second, 3 * time.Second, 3 * time.Second, 4 * time.Second
	if cluster {
		opts, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, fmt.Errorf("OUTBOUND_REDIS_URL: %w", err)
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = dial, read, write, pool
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("OUTBOUND_REDIS_URL: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = dial, read, write, pool
	opts.MaxRetries = 1
	return redis.NewClient(opts), nil
}

// relayServer is the operator's relay as a server to dial: trusted (the
// egress guard does not apply), PLAIN login, implicit TLS or required
// STARTTLS as its URL's scheme said.
func relayServer(r *config.Relay) *transport.Server {
	if r == nil {
		return nil
	}
	sec := tenant.SecurityStartTLS
	if r.ImplicitTLS {
		sec = tenant.SecurityTLS
	}
	return &transport.Server{Host: r.Host, Port: r.Port, Security: sec, Auth: tenant.AuthPlain,
		Username: r.Username, Password: r.Password, Trusted: true}
}

// consumerName is host, pid and a time-derived suffix: unique per process
// even when a restarted container comes back with the same host name and pid.
func consumerName() string {
	host, _ := os.Hostname()
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
}
