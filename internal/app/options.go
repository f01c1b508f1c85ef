package app

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/egress"
)

// Option changes what New wires where a config.Config value cannot: each
// is a seam for tests that run the whole service in-process. Serve passes
// none; dev passes WithConsoleSignInLinks.
type Option func(*options)

type options struct {
	resolver         egress.Resolver
	redis            redis.UniversalClient
	consumer         string
	webhookRetryBase time.Duration
	webhookTimeout   time.Duration
	noPipelining     bool
	signIn           map[string]SignInEndpoints
	consoleLinks     bool
}

// WithConsoleSignInLinks lets ConsoleSignInLink make one-time links that
// open the console signed in: for `outbound dev` only, never serve.
func WithConsoleSignInLinks() Option {
	return func(o *options) { o.consoleLinks = true }
}

// WithResolver answers every host lookup the service makes on its way out
// (tenants' SMTP servers, OAuth token endpoints, webhook URLs), so tests
// can give made-up names loopback or private addresses and see the egress
// guard judge the answer. Without it the system resolver answers.
func WithResolver(r egress.Resolver) Option {
	return func(o *options) { o.resolver = r }
}

// WithRedis uses rdb instead of connecting to cfg.RedisURL, so several
// instances can share one server or cluster with a client the caller
// tuned. The caller keeps ownership: Close and Run leave rdb open.
func WithRedis(rdb redis.UniversalClient) Option {
	return func(o *options) { o.redis = rdb }
}

// WithConsumer names this instance in the queue's and the webhook fan-out's
// consumer groups instead of host-pid-random, so a test can tell its
// replicas apart (and find them in Redis) by name.
func WithConsumer(name string) Option {
	return func(o *options) { o.consumer = name }
}

// WithWebhookTiming sets the webhook dispatcher's first retry delay and
// the bound on one POST (10 s and 10 s otherwise), so retries of a failing
// endpoint happen within a test's patience. Zero keeps the default.
func WithWebhookTiming(retryBase, timeout time.Duration) Option {
	return func(o *options) { o.webhookRetryBase, o.webhookTimeout = retryBase, timeout }
}

// WithoutPipelining sends SMTP commands one at a time even to servers that
// offer PIPELINING (RFC 2920), so tests can run the same exchange both ways.
func WithoutPipelining() Option {
	return func(o *options) { o.noPipelining = true }
}

// SignInEndpoints replace the provider table's endpoints of one identity
// platform's app (see WithSignInEndpoints).
type SignInEndpoints struct {
	AuthURL, TokenURL, JWKSURL, Issuer string
}

// WithSignInEndpoints points the connect page's sign-in for platform
// ("google", "microsoft") at a test's own authorization server. The app
// itself (client id and secret) still comes from the configuration;
// production has no variable for these, so a deployment cannot be
// configured to trust another issuer.
func WithSignInEndpoints(platform string, e SignInEndpoints) Option {
	return func(o *options) {
		if o.signIn == nil {
			o.signIn = map[string]SignInEndpoints{}
		}
		o.signIn[platform] = e
	}
}
