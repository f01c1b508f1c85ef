package systemtest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/app"
	"github.com/outbound-mail/outbound/internal/config"
	"github.com/outbound-mail/outbound/internal/egress"
	"github.com/outbound-mail/outbound/internal/logtest"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
)

// options change how a harness is wired.
type options struct {
	workers        int
	relay          *transport.Server
	roots          *x509.CertPool
	allowPrivate   bool
	resolver       egress.Resolver
	retryBase      time.Duration
	quotaHold      time.Duration
	rateLimit      ratelimit.Limit
	retryMaxAge    time.Duration
	retention      time.Duration // OUTBOUND_RETENTION (default 1h)
	redisOpts      []redistest.Option
	redis          *redistest.Server  // share this Redis instead of starting one (a second replica)
	cluster        *redistest.Cluster // run on this Redis Cluster instead
	partitions     int
	smtpTimeout    time.Duration        // connect, command and data timeouts (default 5s)
	messageTimeout time.Duration        // one message's time on its account (default: the service's)
	sealKey        string               // OUTBOUND_SECRET_KEY; replicas sharing a Redis share it (default: a new one)
	noPipelining   bool                 // send one command at a time though servers offer PIPELINING
	connectReturn  []string             // OUTBOUND_CONNECT_RETURN_URLS: where connect links may send people back
	configure      func(*config.Config) // last word on the configuration (variables a test sets)
	appOpts        []app.Option         // more of app.New's options
	submission     *smtptest.CA         // turn both SMTP submission listeners on with a certificate from this CA
}

// harness is the whole service in-process, built by app.New and run by
// App.Run as `outbound serve` runs it, on real Redis, behind a real HTTP
// listener; every response it sees is checked against openapi.yaml.
type harness struct {
	t          *testing.T
	url        string
	redis      *redistest.Server
	rdb        redis.UniversalClient
	adminToken string
	sendToken  string
	acmeToken  string // send@acme: bound to tenant acme
	acmeAdmin  string // admin@acme: acme's own admin, not the operator
	mu         sync.Mutex
	answers    [][]byte // every response body, for secrecy checks
	logs       *logtest.Buffer
	// The SMTP submission listeners (STARTTLS, implicit TLS), "" unless
	// options.submission is set.
	submissionAddr, submissionsAddr string
}

func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	var rdb redis.UniversalClient
	srv := o.redis
	redisURL := ""
	if o.cluster != nil {
		opts, err := redis.ParseClusterURL(o.cluster.URL())
		if err != nil {
			t.Fatal(err)
		}
		rdb, redisURL = redis.NewClusterClient(opts), o.cluster.URL()
	} else {
		if srv == nil {
			srv = redistest.Start(t, o.redisOpts...)
		}
		// Shorter timeouts than production's and no retry, so tests that
		// stop Redis see it fail at once.
		rdb = redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
			WriteTimeout: 2 * time.Second, PoolTimeout: 2 * time.Second, MaxRetries: 0})
		redisURL = srv.URL()
	}
	t.Cleanup(func() { rdb.Close() })

	adminToken, adminKey, _ := apikey.Generate("ops", apikey.ScopeAdmin)
	sendToken, sendKey, _ := apikey.Generate("billing", apikey.ScopeSend)
	boundToken, boundKey, _ := apikey.Generate("acme-only", "send@acme")
	acmeAdminToken, acmeAdminKey, _ := apikey.Generate("acme-admin", "admin@acme")
	if o.sealKey == "" {
		o.sealKey = seal.NewKey()
	}
	// Listening first gives the service its public URL, which connect
	// links start with.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := harnessConfig(t, o, redisURL, o.cluster != nil, apikey.Set{adminKey, sendKey, boundKey, acmeAdminKey})
	cfg.PublicURL = "http://" + ln.Addr().String()

	logs := &logtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: cfg.LogLevel}))
	appOpts := []app.Option{app.WithRedis(rdb), app.WithConsumer(t.Name()), app.WithResolver(o.resolver),
		app.WithWebhookTiming(100*time.Millisecond, 2*time.Second)}
	if o.noPipelining {
		appOpts = append(appOpts, app.WithoutPipelining())
	}
	appOpts = append(appOpts, o.appOpts...)
	a, err := app.New(cfg, log, appOpts...)
	if err != nil {
		ln.Close()
		t.Fatalf("app.New: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-ran; err != nil {
			t.Errorf("app.Run: %v", err)
		}
	})
	h := &harness{t: t, url: "http://" + ln.Addr().String(), redis: srv, rdb: rdb, adminToken: adminToken, sendToken: sendToken,
		acmeToken: boundToken, acmeAdmin: acmeAdminToken, logs: logs}
	if startTLS, implicit := a.SubmissionAddrs(); startTLS != nil {
		h.submissionAddr, h.submissionsAddr = startTLS.String(), implicit.String()
	}
	return h
}

// harnessConfig is the service's configuration as production reads it,
// with the harness's values where tests need them other than production's
// defaults: small limits, short timeouts, quick retries.
func harnessConfig(t *testing.T, o options, redisURL string, cluster bool, keys apikey.Set) config.Config {
	t.Helper()
	env := map[string]string{"OUTBOUND_REDIS_URL": redisURL, "OUTBOUND_REDIS_CLUSTER": strconv.FormatBool(cluster),
		"OUTBOUND_SECRET_KEY": o.sealKey, "OUTBOUND_API_KEYS": "", "OUTBOUND_LOG_LEVEL": "debug"}
	if o.submission != nil {
		certFile, keyFile := writeLeaf(t, o.submission)
		env["OUTBOUND_SUBMISSION_LISTEN"], env["OUTBOUND_SUBMISSIONS_LISTEN"] = "127.0.0.1:0", "127.0.0.1:0"
		env["OUTBOUND_SUBMISSION_TLS_CERT"], env["OUTBOUND_SUBMISSION_TLS_KEY"] = certFile, keyFile
	}
	for i, k := range keys {
		if i > 0 {
			env["OUTBOUND_API_KEYS"] += ","
		}
		env["OUTBOUND_API_KEYS"] += k.Entry()
	}
	cfg, err := config.Load(func(name string) string { return env[name] })
	if err != nil {
		t.Fatalf("harness configuration: %v", err)
	}
	if o.partitions == 0 {
		o.partitions = 2
	}
	if o.smtpTimeout == 0 {
		o.smtpTimeout = 5 * time.Second
	}
	if o.retention == 0 {
		o.retention = time.Hour
	}
	if o.retryMaxAge == 0 {
		o.retryMaxAge = time.Hour
	}
	if o.rateLimit.PerMinute == 0 {
		o.rateLimit = ratelimit.Limit{PerMinute: 1000, PerDay: 100000} // out of the way unless a test sets it
	}
	if o.quotaHold == 0 {
		o.quotaHold = 10 * time.Minute // inside the harness's one-hour retry window
	}
	if o.retryBase == 0 {
		o.retryBase = 100 * time.Millisecond
	}
	cfg.QueuePartitions = o.partitions
	cfg.SMTPRoots = o.roots
	cfg.AllowPrivateNetworks = o.allowPrivate
	cfg.HeloName = "outbound.test"
	cfg.DefaultRelay = relayConfig(t, o.relay)
	cfg.DefaultFrom = mail.Address{Name: "Platform", Address: "no-reply@platform.example"}
	cfg.MaxRecipients, cfg.MaxMessageBytes = 100, 1<<20
	cfg.RatePerMinute, cfg.RatePerDay = o.rateLimit.PerMinute, o.rateLimit.PerDay
	cfg.Workers = o.workers
	cfg.ClaimAfter = 2 * time.Second
	cfg.RetryBase, cfg.RetryMaxAge, cfg.QuotaHold = o.retryBase, o.retryMaxAge, o.quotaHold
	cfg.Retention = o.retention // below config's one-minute floor in retention tests
	cfg.SMTPConnectTimeout, cfg.SMTPCommandTimeout, cfg.SMTPDataTimeout = o.smtpTimeout, o.smtpTimeout, o.smtpTimeout
	if o.messageTimeout > 0 {
		cfg.SMTPMessageTimeout = o.messageTimeout
	}
	cfg.SMTPMaxConnections, cfg.SMTPIdleTimeout = 3, time.Minute
	cfg.ShutdownGrace = 5 * time.Second
	cfg.ConnectReturnURLs = o.connectReturn
	if o.configure != nil {
		o.configure(&cfg)
	}
	return cfg
}

// writeLeaf writes a certificate from ca for 127.0.0.1 and localhost, and
// its key, as PEM files the way an operator hands them to the service.
func writeLeaf(t *testing.T, ca *smtptest.CA) (certFile, keyFile string) {
	t.Helper()
	return smtptest.WriteLeaf(t, t.TempDir(), ca.Leaf(t, smtptest.LeafOptions{}))
}

// relayConfig is a test's default relay as the operator configures one
// (OUTBOUND_DEFAULT_RELAY), failing for one that configuration cannot
// express rather than wiring it some other way.
func relayConfig(t *testing.T, s *transport.Server) *config.Relay {
	t.Helper()
	if s == nil {
		return nil
	}
	if !s.Trusted || s.Auth != tenant.AuthPlain || (s.Security != tenant.SecurityTLS && s.Security != tenant.SecurityStartTLS) {
		t.Fatalf("the default relay is trusted, logs in with PLAIN and uses TLS or STARTTLS; got %+v", s)
	}
	return &config.Relay{Host: s.Host, Port: s.Port, ImplicitTLS: s.Security == tenant.SecurityTLS,
		Username: s.Username, Password: s.Password}
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// code is the problem code of an error response.
func (r response) code(t *testing.T) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("error response has Content-Type %q: %s", ct, r.body)
	}
	c, _ := r.json(t)["code"].(string)
	return c
}

// do sends a request. body may be nil, a string (sent as is) or a value
// (sent as JSON). headers are name, value pairs.
func (h *harness) do(method, path, token string, body any, headers ...string) response {
	h.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			h.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, h.url+path, bytes.NewReader(raw))
	if err != nil {
		h.t.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, body: out}
	h.mu.Lock()
	h.answers = append(h.answers, out)
	h.mu.Unlock()
	checkAgainstSpec(h.t, req, r)
	if r.header.Get("X-Request-Id") == "" {
		h.t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	return r
}

// The OpenAPI document, loaded once, and what the tests exercised of it.
var spec struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
	mu     sync.Mutex
	seen   map[string]bool // "METHOD /path/template STATUS"
}

func loadSpec(t *testing.T) {
	t.Helper()
	spec.once.Do(func() {
		loader := openapi3.NewLoader()
		spec.doc, spec.err = loader.LoadFromFile("../openapi.yaml")
		if spec.err != nil {
			return
		}
		if spec.err = spec.doc.Validate(loader.Context); spec.err != nil {
			return
		}
		spec.doc.Servers = nil // match any host: the test server's port is random
		spec.router, spec.err = gorillamux.NewRouter(spec.doc)
		spec.seen = map[string]bool{}
	})
	if spec.err != nil {
		t.Fatalf("openapi.yaml: %v", spec.err)
	}
}

// checkAgainstSpec fails the test when a response is not what openapi.yaml
// says that operation answers: undocumented status, wrong content type,
// body not matching its schema, missing required header.
func checkAgainstSpec(t *testing.T, req *http.Request, r response) {
	t.Helper()
	loadSpec(t)
	route, params, err := spec.router.FindRoute(req)
	if err != nil {
		if r.status == http.StatusNotFound || r.status == http.StatusMethodNotAllowed {
			return // an undocumented path or method, answered as such
		}
		t.Fatalf("%s %s is not in openapi.yaml but answered %d", req.Method, req.URL.Path, r.status)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  r.status,
		Header:  r.header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(r.body)
	// Every operation has a default response (a client's catch-all), which
	// would take any status: each status the service answers must still
	// be listed on its own.
	if route.Operation.Responses.Status(r.status) == nil {
		t.Errorf("%s %s → %d: openapi.yaml does not list the status (only default takes it)\nbody: %s", req.Method, req.URL.Path, r.status, r.body)
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s → %d does not match openapi.yaml: %v\nbody: %s", req.Method, req.URL.Path, r.status, err, r.body)
	}
	spec.mu.Lock()
	spec.seen[req.Method+" "+route.Path+" "+strconv.Itoa(r.status)] = true
	spec.mu.Unlock()
}

// assertNeverAnswered fails when any response so far holds secret.
func (h *harness) assertNeverAnswered(t *testing.T, secret string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, body := range h.answers {
		if strings.Contains(string(body), secret) {
			t.Errorf("a response holds %q: %s", secret, body)
		}
	}
}
