package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only on OUTBOUND_DEBUG_LISTEN
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/api"
	"github.com/outbound-mail/outbound/internal/config"
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

// serve runs the service until ctx ends, then shuts down in reverse order
// of start: stop HTTP, drain workers, close SMTP sessions, close Redis.
// onListen, when not nil, is told the address once it accepts connections.
func serve(ctx context.Context, getenv func(string) string, logOut io.Writer, onListen func(net.Addr)) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))

	a, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	// Listen before serving: a bad address fails at once, and :0 works.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		a.close()
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if onListen != nil {
		onListen(ln.Addr())
	}
	return a.run(ctx, ln)
}

// app is the wired service.
type app struct {
	cfg      config.Config
	log      *slog.Logger
	rdb      redis.UniversalClient
	delivery *delivery.Service
	webhooks *webhook.Dispatcher
	http     *http.Server
	closers  []func() error // caches' subscriptions
}

func newApp(cfg config.Config, log *slog.Logger) (*app, error) {
	rdb, err := newRedis(cfg.RedisURL, cfg.RedisCluster)
	if err != nil {
		return nil, err
	}
	sealer, err := seal.New(cfg.SecretKey, cfg.PreviousKeys...)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	profiles := tenant.NewStore(rdb, sealer)
	stopProfileCache := profiles.UseCache(30 * time.Second)
	q := queue.New(rdb, queue.Options{Partitions: cfg.QueuePartitions, Retention: cfg.Retention, IdempotencyTTL: cfg.IdempotencyTTL,
		WaitReplicas: cfg.RedisWaitReplicas, WaitTimeout: cfg.RedisWaitTimeout})
	dialer := &transport.Dialer{
		AllowPrivate:   cfg.AllowPrivateNetworks,
		RootCAs:        cfg.SMTPRoots,
		HeloName:       cfg.HeloName,
		ConnectTimeout: cfg.SMTPConnectTimeout,
		CommandTimeout: cfg.SMTPCommandTimeout,
		DataTimeout:    cfg.SMTPDataTimeout,
	}
	pool := delivery.NewPool(dialer.Dial, cfg.SMTPMaxConnections, cfg.SMTPIdleTimeout)
	suppressions := suppression.New(rdb)
	stopSuppressionCache := suppressions.UseCache(30 * time.Second)
	consumer := consumerName()
	tokens := oauth.New(rdb, sealer, (&egress.Guard{AllowPrivate: cfg.AllowPrivateNetworks}).HTTPClient(cfg.SMTPRoots, 15*time.Second),
		profiles.SetRefreshToken)
	hooks := webhook.NewStore(rdb, sealer)
	stopHookCache := hooks.UseCache(30 * time.Second)
	m := metrics.New(cfg.MetricsTenantLabels)
	m.Gauge("outbound_smtp_connections_open", "SMTP sessions open (idle or in use) in this process.",
		func() float64 { return float64(pool.Open()) })
	m.WatchQueue(q, log)
	svc := delivery.New(delivery.Config{
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
	dispatcher := webhook.NewDispatcher(webhook.Options{Consumer: consumer, Dropped: m},
		hooks, q, rdb, (&egress.Guard{AllowPrivate: cfg.AllowPrivateNetworks}).HTTPClient(cfg.SMTPRoots, 10*time.Second), log)

	limits := tenant.Limits{RatePerMinute: cfg.RatePerMinute, RatePerDay: cfg.RatePerDay, MaxConnections: cfg.SMTPMaxConnections}
	handler := api.New(api.Config{Keys: cfg.APIKeys, MaxMessageBytes: cfg.MaxMessageBytes, Limits: limits}, api.Deps{Log: log, Ready: q,
		Profiles: profiles, Status: profiles, Verifier: svc, Messages: svc, Suppressions: suppressions, Webhooks: hooks, Metrics: m})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.HTTPReadHeaderTimeout,
		// Long enough for a 25 MB body on a modest link (the default 2m),
		// short enough that slow clients cannot hold connections forever.
		ReadTimeout:  cfg.HTTPReadTimeout,
		WriteTimeout: cfg.HTTPReadTimeout + 30*time.Second,
		IdleTimeout:  cfg.HTTPIdleTimeout,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return &app{cfg: cfg, log: log, rdb: rdb, delivery: svc, webhooks: dispatcher, http: srv,
		closers: []func() error{stopProfileCache, stopSuppressionCache, stopHookCache}}, nil
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

func consumerName() string {
	host, _ := os.Hostname()
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
}

func (a *app) run(ctx context.Context, ln net.Listener) error {
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
	if a.cfg.Workers > 0 {
		a.webhooks.Start()
	}
	errc := make(chan error, 1)
	go func() { errc <- a.http.Serve(ln) }()
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
	if err := a.http.Shutdown(grace); err != nil {
		a.log.Warn("http shutdown", "error", err)
	}
	if err := a.delivery.Shutdown(grace); err != nil {
		a.log.Warn("delivery shutdown cut in-flight sends short; they will be retried", "error", err)
	}
	if err := a.webhooks.Shutdown(grace); err != nil {
		a.log.Warn("webhook shutdown cut posts short; they will be retried", "error", err)
	}
	a.close()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

func (a *app) close() {
	for _, c := range a.closers {
		_ = c()
	}
	a.rdb.Close()
}
