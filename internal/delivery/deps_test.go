package delivery

import (
	"github.com/outbound-mail/outbound/internal/metrics"
	"github.com/outbound-mail/outbound/internal/oauth"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/suppression"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
	"github.com/outbound-mail/outbound/internal/webhook"
)

// The service's own parts are what Deps asks for: the build of this
// package's tests fails when one of them no longer is.
var (
	_ Queue        = (*queue.Queue)(nil)
	_ Profiles     = (*tenant.Store)(nil)
	_ Verifier     = (*transport.Dialer)(nil)
	_ Pacer        = (*ratelimit.Limiter)(nil)
	_ Tokens       = (*oauth.Tokens)(nil)
	_ Suppressions = (*suppression.Store)(nil)
	_ Metrics      = (*metrics.Metrics)(nil)
	_ Listeners    = (*webhook.Store)(nil)
)
