// Package config reads Outbound's configuration from the environment and
// validates it, naming the variable at fault.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
)

// Config is everything the service reads from its environment.
type Config struct {
	Listen string

	RedisURL          string
	RedisCluster      bool // RedisURL is a cluster URL: redis://h1:p1?addr=h2:p2&addr=h3:p3
	RedisWaitReplicas int
	RedisWaitTimeout  time.Duration
	QueuePartitions   int

	SecretKey    []byte
	PreviousKeys [][]byte
	APIKeys      apikey.Set

	// SMTPRoots is the system pool plus OUTBOUND_SMTP_CA_FILE, if given.
	SMTPRoots            *x509.CertPool
	AllowPrivateNetworks bool
	HeloName             string

	DefaultRelay *Relay // nil when no default relay is configured
	DefaultFrom  mail.Address

	MaxRecipients   int
	MaxMessageBytes int64

	RatePerMinute int // recipients per tenant per minute (the burst too)
	RatePerDay    int // recipients per tenant per day

	Workers        int
	ClaimAfter     time.Duration
	RetryBase      time.Duration
	RetryMaxAge    time.Duration
	QuotaHold      time.Duration
	Retention      time.Duration
	IdempotencyTTL time.Duration

	SMTPConnectTimeout time.Duration
	SMTPCommandTimeout time.Duration
	SMTPDataTimeout    time.Duration
	SMTPMessageTimeout time.Duration
	SMTPMaxConnections int
	SMTPIdleTimeout    time.Duration

	ShutdownGrace time.Duration
	LogLevel      slog.Level

	// HTTP server timeouts, so slow or stuck clients cannot hold
	// connections (slow-loris).
	HTTPReadHeaderTimeout time.Duration
	HTTPReadTimeout       time.Duration
	HTTPIdleTimeout       time.Duration
	// MetricsTenantLabels puts tenant ids into metric labels; off by
	// default because every tenant becomes a time series.
	MetricsTenantLabels bool
	// DebugListen, when set, serves net/http/pprof there (keep it private).
	DebugListen string

	// PublicURL is where people reach this service (scheme, host, port,
	// no path): connect links point there.
	PublicURL string
	// ConnectReturnURLs are the prefixes a connect link's return_url must
	// start with: the product pages a tenant goes back to. Empty: no link
	// can be made.
	ConnectReturnURLs []string
	// GoogleApp and MicrosoftApp are the OAuth2 apps the connect page's
	// "Sign in with Google" and "Sign in with Microsoft" use; a platform
	// without one offers only its password path. Each app registers
	// PublicURL + "/connect/oauth/callback" as its redirect URI.
	GoogleApp, MicrosoftApp OAuthApp
	// Submission is the SMTP submission door; off unless a listener is set.
	Submission Submission
}

// Submission configures the SMTP submission listeners (RFC 6409 on 587
// with STARTTLS, RFC 8314 implicit TLS on 465). Messages are bounded by
// MaxRecipients and MaxMessageBytes like those posted to the API.
type Submission struct {
	Listen    string // STARTTLS; "" is off
	ListenTLS string // implicit TLS; "" is off
	// CertFile and KeyFile are PEM files, read again when they change.
	CertFile, KeyFile string
	MaxConnections    int
	// MaxTenantConnections is how many of them one tenant may hold
	// logged in; 0 is a quarter of MaxConnections.
	MaxTenantConnections int
	CommandTimeout       time.Duration
	DataTimeout          time.Duration
}

// Enabled reports whether any submission listener is configured.
func (s Submission) Enabled() bool { return s.Listen != "" || s.ListenTLS != "" }

// Relay is the operator's own SMTP relay, used for tenants without an
// enabled profile of their own. It is trusted: the egress guard does not
// apply to it.
type Relay struct {
	Host        string
	Port        int
	ImplicitTLS bool // smtps:// (true) or smtp:// with STARTTLS required (false)
	Username    string
	Password    secret.String
}

// OAuthApp is an OAuth2 client registered with an identity platform.
type OAuthApp struct {
	ClientID     string
	ClientSecret secret.String
	// Directory is the Microsoft Entra tenant in the app's endpoints:
	// "common" (any work or personal account), "organizations", or one
	// directory's id or domain.
	Directory string
}

// Enabled reports whether the app is configured.
func (a OAuthApp) Enabled() bool { return a.ClientID != "" }

// Getenv looks up one variable; os.Getenv fits, tests pass a map's lookup.
type Getenv func(string) string

// Load reads and validates every variable. All problems are reported
// together, each prefixed by the variable's name.
func Load(getenv Getenv) (Config, error) {
	r := reader{getenv: getenv}
	c := r.load()
	return c, errors.Join(r.errs...)
}

// Variables lists every variable Load reads, so deployment files can be
// checked against the code.
func Variables() []string {
	r := reader{getenv: func(string) string { return "" }}
	r.load()
	names := make([]string, 0, len(r.read))
	for name := range r.read {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func (r *reader) load() Config {
	c := Config{
		Listen:            r.str("OUTBOUND_LISTEN", ":8080"),
		RedisURL:          r.redisURL("OUTBOUND_REDIS_URL"),
		RedisCluster:      r.boolean("OUTBOUND_REDIS_CLUSTER", false),
		RedisWaitReplicas: r.integer("OUTBOUND_REDIS_WAIT_REPLICAS", 0, 0, 16),
		RedisWaitTimeout:  r.duration("OUTBOUND_REDIS_WAIT_TIMEOUT", time.Second, time.Millisecond),
		QueuePartitions:   r.integer("OUTBOUND_QUEUE_PARTITIONS", 1, 1, 1024),

		SecretKey:    r.key("OUTBOUND_SECRET_KEY"),
		PreviousKeys: r.previousKeys("OUTBOUND_SECRET_KEYS_PREVIOUS"),
		APIKeys:      r.apiKeys("OUTBOUND_API_KEYS"),

		SMTPRoots:            r.roots("OUTBOUND_SMTP_CA_FILE"),
		AllowPrivateNetworks: r.boolean("OUTBOUND_ALLOW_PRIVATE_NETWORKS", false),
		HeloName:             r.str("OUTBOUND_HELO_NAME", hostname()),

		DefaultRelay: r.relay("OUTBOUND_DEFAULT_RELAY"),

		MaxRecipients:   r.integer("OUTBOUND_MAX_RECIPIENTS", 100, 1, 10000),
		MaxMessageBytes: int64(r.integer("OUTBOUND_MAX_MESSAGE_BYTES", 25<<20, 1024, 1<<30)),

		RatePerMinute: r.integer("OUTBOUND_RATE_PER_MINUTE", 60, 1, 1_000_000),
		RatePerDay:    r.integer("OUTBOUND_RATE_PER_DAY", 2000, 1, 100_000_000),

		Workers:        r.integer("OUTBOUND_WORKERS", 16, 0, 4096),
		ClaimAfter:     r.duration("OUTBOUND_CLAIM_AFTER", 60*time.Second, time.Second),
		RetryBase:      r.duration("OUTBOUND_RETRY_BASE", 30*time.Second, 10*time.Millisecond),
		RetryMaxAge:    r.duration("OUTBOUND_RETRY_MAX_AGE", 24*time.Hour, time.Second),
		QuotaHold:      r.duration("OUTBOUND_QUOTA_HOLD", time.Hour, time.Second),
		Retention:      r.duration("OUTBOUND_RETENTION", 168*time.Hour, time.Minute),
		IdempotencyTTL: r.duration("OUTBOUND_IDEMPOTENCY_TTL", 24*time.Hour, 24*time.Hour),

		SMTPConnectTimeout: r.duration("OUTBOUND_SMTP_CONNECT_TIMEOUT", 15*time.Second, 100*time.Millisecond),
		SMTPCommandTimeout: r.duration("OUTBOUND_SMTP_COMMAND_TIMEOUT", 60*time.Second, 100*time.Millisecond),
		SMTPDataTimeout:    r.duration("OUTBOUND_SMTP_DATA_TIMEOUT", 5*time.Minute, 100*time.Millisecond),
		SMTPMessageTimeout: r.duration("OUTBOUND_SMTP_MESSAGE_TIMEOUT", 5*time.Minute, 100*time.Millisecond),
		SMTPMaxConnections: r.integer("OUTBOUND_SMTP_MAX_CONNECTIONS", 3, 1, 1000),
		SMTPIdleTimeout:    r.duration("OUTBOUND_SMTP_IDLE_TIMEOUT", 30*time.Second, 100*time.Millisecond),

		ShutdownGrace: r.duration("OUTBOUND_SHUTDOWN_GRACE", 30*time.Second, 0),
		LogLevel:      r.logLevel("OUTBOUND_LOG_LEVEL"),

		HTTPReadHeaderTimeout: r.duration("OUTBOUND_HTTP_READ_HEADER_TIMEOUT", 10*time.Second, 10*time.Millisecond),
		HTTPReadTimeout:       r.duration("OUTBOUND_HTTP_READ_TIMEOUT", 2*time.Minute, 10*time.Millisecond),
		HTTPIdleTimeout:       r.duration("OUTBOUND_HTTP_IDLE_TIMEOUT", 2*time.Minute, 10*time.Millisecond),

		MetricsTenantLabels: r.boolean("OUTBOUND_METRICS_TENANT_LABELS", false),
		DebugListen:         r.str("OUTBOUND_DEBUG_LISTEN", ""),
	}
	c.PublicURL = r.publicURL("OUTBOUND_PUBLIC_URL", c.Listen)
	c.ConnectReturnURLs = r.returnURLs("OUTBOUND_CONNECT_RETURN_URLS")
	c.DefaultFrom = r.defaultFrom("OUTBOUND_DEFAULT_FROM", c.DefaultRelay != nil)
	c.Submission = r.submission()
	c.GoogleApp = r.oauthApp("OUTBOUND_GOOGLE_CLIENT_ID", "OUTBOUND_GOOGLE_CLIENT_SECRET", "")
	c.MicrosoftApp = r.oauthApp("OUTBOUND_MICROSOFT_CLIENT_ID", "OUTBOUND_MICROSOFT_CLIENT_SECRET", "OUTBOUND_MICROSOFT_TENANT")
	if c.RedisCluster && c.RedisWaitReplicas > 0 {
		// WAIT counts the replicas of the node it runs on; on a cluster the
		// accept script and WAIT would have to be pinned to the same shard.
		r.fail("OUTBOUND_REDIS_WAIT_REPLICAS", "is not supported with OUTBOUND_REDIS_CLUSTER=true yet")
	}
	return c
}

// reader collects one error per bad variable instead of stopping at the first.
type reader struct {
	getenv Getenv
	errs   []error
	read   map[string]bool
}

func (r *reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
}

func (r *reader) get(name string) string {
	if r.read == nil {
		r.read = map[string]bool{}
	}
	r.read[name] = true
	return strings.TrimSpace(r.getenv(name))
}

func (r *reader) str(name, def string) string {
	if v := r.get(name); v != "" {
		return v
	}
	return def
}

func (r *reader) integer(name string, def, min, max int) int {
	v := r.get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		r.fail(name, "want an integer from %d to %d, got %q", min, max, v)
		return def
	}
	return n
}

func (r *reader) boolean(name string, def bool) bool {
	v := r.get(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, "want true or false, got %q", v)
		return def
	}
	return b
}

func (r *reader) duration(name string, def, min time.Duration) time.Duration {
	v := r.get(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, "want a Go duration such as 30s, 24h or 168h, got %q", v)
		return def
	}
	if d < min {
		r.fail(name, "must be at least %s, got %s", min, d)
		return def
	}
	return d
}

func (r *reader) redisURL(name string) string {
	v := r.get(name)
	if v == "" {
		r.fail(name, "required (redis://host:6379/0 or rediss://...); to try Outbound without Redis run `outbound dev`")
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		// The URL may carry a password: do not echo it.
		r.fail(name, "want redis://[user:password@]host:port[/db] or rediss://...")
		return ""
	}
	return v
}

func (r *reader) key(name string) []byte {
	v := r.get(name)
	if v == "" {
		r.fail(name, "required: base64 of 32 random bytes (`outbound keygen` prints one)")
		return nil
	}
	k, err := seal.ParseKey(v)
	if err != nil {
		r.fail(name, "want base64 of 32 random bytes (`outbound keygen` prints one)")
		return nil
	}
	return k
}

func (r *reader) previousKeys(name string) [][]byte {
	var keys [][]byte
	for i, v := range strings.Split(r.get(name), ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		k, err := seal.ParseKey(v)
		if err != nil {
			r.fail(name, "entry %d: want base64 of 32 bytes", i+1)
			continue
		}
		keys = append(keys, k)
	}
	return keys
}

func (r *reader) apiKeys(name string) apikey.Set {
	keys, err := apikey.Parse(r.get(name))
	if err != nil {
		r.fail(name, "%v", err)
		return nil
	}
	if len(keys) == 0 {
		r.fail(name, "required: at least one name:scope:sha256hex entry (`outbound apikey NAME SCOPE` makes one)")
	}
	return keys
}

func (r *reader) roots(name string) *x509.CertPool {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	path := r.get(name)
	if path == "" {
		return pool
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		r.fail(name, "%v", err)
		return pool
	}
	if !pool.AppendCertsFromPEM(pem) {
		r.fail(name, "%s holds no PEM certificate", path)
	}
	return pool
}

// relay parses smtps://user:pass@host:465 (implicit TLS) or
// smtp://user:pass@host:587 (STARTTLS, required). Errors never repeat the
// URL, which holds a password.
func (r *reader) relay(name string) *Relay {
	v := r.get(name)
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil {
		r.fail(name, "not a URL; want smtps://user:password@host:465 or smtp://user:password@host:587 (percent-encode special characters)")
		return nil
	}
	rel := &Relay{Host: u.Hostname()}
	switch u.Scheme {
	case "smtps":
		rel.ImplicitTLS, rel.Port = true, 465
	case "smtp":
		rel.Port = 587
	default:
		r.fail(name, "scheme %q: want smtps:// (implicit TLS) or smtp:// (STARTTLS)", u.Scheme)
		return nil
	}
	if rel.Host == "" {
		r.fail(name, "no host")
		return nil
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			r.fail(name, "port %q out of range", p)
			return nil
		}
		rel.Port = n
	}
	if u.User != nil {
		rel.Username = u.User.Username()
		pw, _ := u.User.Password()
		rel.Password = secret.New(pw)
	}
	return rel
}

func (r *reader) submission() Submission {
	s := Submission{
		Listen:               r.address("OUTBOUND_SUBMISSION_LISTEN"),
		ListenTLS:            r.address("OUTBOUND_SUBMISSIONS_LISTEN"),
		CertFile:             r.str("OUTBOUND_SUBMISSION_TLS_CERT", ""),
		KeyFile:              r.str("OUTBOUND_SUBMISSION_TLS_KEY", ""),
		MaxConnections:       r.integer("OUTBOUND_SUBMISSION_MAX_CONNECTIONS", 100, 1, 100_000),
		MaxTenantConnections: r.integer("OUTBOUND_SUBMISSION_MAX_TENANT_CONNECTIONS", 0, 1, 100_000),
		// RFC 5321 section 4.5.3.2: servers wait 5 minutes for a command
		// and 10 for the end of the message.
		CommandTimeout: r.duration("OUTBOUND_SUBMISSION_COMMAND_TIMEOUT", 5*time.Minute, time.Second),
		DataTimeout:    r.duration("OUTBOUND_SUBMISSION_DATA_TIMEOUT", 10*time.Minute, time.Second),
	}
	switch {
	case !s.Enabled() && (s.CertFile != "" || s.KeyFile != ""):
		r.fail("OUTBOUND_SUBMISSION_TLS_CERT", "set, but neither OUTBOUND_SUBMISSION_LISTEN nor OUTBOUND_SUBMISSIONS_LISTEN is")
	case !s.Enabled():
	case s.CertFile == "":
		r.fail("OUTBOUND_SUBMISSION_TLS_CERT", "required with a submission listener: the PEM certificate chain (logins need TLS)")
	case s.KeyFile == "":
		r.fail("OUTBOUND_SUBMISSION_TLS_KEY", "required with a submission listener: the PEM private key")
	default:
		if _, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile); err != nil {
			r.fail("OUTBOUND_SUBMISSION_TLS_CERT", "with OUTBOUND_SUBMISSION_TLS_KEY: %v", err)
		}
	}
	return s
}

// address is a host:port to listen on, or "".
func (r *reader) address(name string) string {
	v := r.get(name)
	if v == "" {
		return ""
	}
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		r.fail(name, "want host:port or :port (e.g. :587), got %q", v)
		return ""
	}
	return v
}

func (r *reader) defaultFrom(name string, required bool) mail.Address {
	v := r.get(name)
	if v == "" {
		if required {
			r.fail(name, "required with OUTBOUND_DEFAULT_RELAY: the platform's address, e.g. \"Platform <no-reply@platform.example>\"")
		}
		return mail.Address{}
	}
	a, err := mail.ParseAddress(v)
	if err != nil {
		r.fail(name, "%v", err)
		return mail.Address{}
	}
	return *a
}

// publicURL is an http(s) origin; the default is localhost on the listen
// port, which suits `outbound dev` on a workstation.
func (r *reader) publicURL(name, listen string) string {
	v := strings.TrimSuffix(r.get(name), "/")
	if v == "" {
		_, port, err := net.SplitHostPort(listen)
		if err != nil || port == "" {
			port = "8080"
		}
		return "http://localhost:" + port
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		r.fail(name, "want the service's origin, https://host[:port] without path or query, got %q", v)
		return ""
	}
	return u.Scheme + "://" + u.Host
}

var directoryPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,127}$`)

// oauthApp reads one platform's app: an id and a secret together (the
// page is a confidential client), and a directory only beside an id.
// The secret is never part of an error message.
func (r *reader) oauthApp(idName, secretName, directoryName string) OAuthApp {
	a := OAuthApp{ClientID: r.get(idName), ClientSecret: secret.New(r.get(secretName))}
	switch {
	case a.ClientID == "" && !a.ClientSecret.IsZero():
		r.fail(secretName, "is set without %s", idName)
	case a.ClientID != "" && a.ClientSecret.IsZero():
		r.fail(secretName, "is required with %s", idName)
	case len(a.ClientID) > 256 || strings.ContainsAny(a.ClientID, " \t\r\n"):
		r.fail(idName, "want an app (client) id, got %q", a.ClientID)
	}
	if directoryName == "" {
		return a
	}
	a.Directory = r.get(directoryName)
	switch {
	case a.Directory != "" && a.ClientID == "":
		r.fail(directoryName, "is set without %s", idName)
	case a.Directory != "" && !directoryPattern.MatchString(a.Directory):
		r.fail(directoryName, "want common, organizations, consumers or a directory id or domain, got %q", a.Directory)
	case a.Directory == "" && a.ClientID != "":
		a.Directory = "common"
	}
	return a
}

// returnURLs are comma-separated URL prefixes, each https:// (http:// only
// for loopback, as in development) with a host and a path, no query,
// fragment or credentials: a prefix that stopped in the middle of a host
// name (https://app.example) would also let https://app.example.evil.test
// through, so a prefix's path starts with '/'.
func (r *reader) returnURLs(name string) []string {
	var out []string
	for _, v := range strings.Split(r.get(name), ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		loopback := err == nil && (u.Hostname() == "localhost" || net.ParseIP(u.Hostname()).IsLoopback())
		if err != nil || !(u.Scheme == "https" || u.Scheme == "http" && loopback) || u.Host == "" || u.User != nil ||
			!strings.HasPrefix(u.Path, "/") || u.RawQuery != "" || u.Fragment != "" {
			r.fail(name, "want comma-separated https://host/path prefixes (http:// only on loopback), got %q", v)
			continue
		}
		out = append(out, v)
	}
	return out
}

func (r *reader) logLevel(name string) slog.Level {
	var l slog.Level
	if v := r.get(name); v != "" {
		if err := l.UnmarshalText([]byte(v)); err != nil {
			r.fail(name, "want debug, info, warn or error, got %q", v)
		}
	}
	return l
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" || net.ParseIP(h) != nil {
		return "localhost"
	}
	return h
}
