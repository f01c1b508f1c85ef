// Package delivery turns queued messages into sent mail: it picks the
// route (the tenant's own account or the platform's default relay),
// composes, sends over pooled sessions, classifies the result and
// schedules retries. It also accepts new messages, since accepting needs
// the same routing decision.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/oauth"
	"github.com/outbound-mail/outbound/internal/provider"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
	"github.com/outbound-mail/outbound/internal/validation"
)

// Route names.
const (
	RouteTenant  = "tenant"
	RouteDefault = "default"
)

var (
	// ErrNoRoute means the tenant has no enabled profile and no default
	// relay is configured.
	ErrNoRoute = errors.New("delivery: no enabled tenant profile and no default relay")
	// ErrFromMismatch means the request's from address is not the
	// tenant's account address, which the provider would rewrite or refuse.
	// Accept answers it as a *FromMismatchError, which names the address.
	ErrFromMismatch = errors.New("delivery: from address is not the tenant's account address")
)

// FromMismatchError refuses a from address other than the account's. It
// matches ErrFromMismatch.
type FromMismatchError struct {
	Account string // the address the tenant's account sends as
}

func (e *FromMismatchError) Error() string {
	return ErrFromMismatch.Error() + ": the account sends as " + e.Account
}

// Is makes errors.Is(err, ErrFromMismatch) hold.
func (e *FromMismatchError) Is(target error) bool { return target == ErrFromMismatch }

// route is how one message leaves: which server, which envelope sender,
// and the From and Reply-To headers.
type route struct {
	name     string
	server   transport.Server
	mailFrom string
	from     message.Address
	replyTo  []message.Address
	profile  *tenant.Profile // the tenant's profile, enabled or not; nil when none
	limits   tenant.Limits   // what the profile allows (the service's when none): see tenant.Limits.InForce
	status   tenant.Status   // whether the tenant's sending is paused
	inTurn   bool            // the message was set aside and its turn came: see Pool.GetInTurn
}

// maxConns is the cap on the route's sessions: the tenant's account's
// (its own, its provider's or the pool's), or 0 for the pool's default.
func (r route) maxConns() int {
	if r.name == RouteTenant {
		return r.limits.MaxConnections
	}
	return 0
}

// resolve picks the route for req: the tenant's enabled profile, else the
// default relay. forceDefault skips the profile (fallback_to_default).
func (s *Service) resolve(ctx context.Context, req *message.Request, forceDefault bool) (route, error) {
	var profile *tenant.Profile
	p, found, status, err := s.profiles.Load(ctx, req.TenantID)
	if err != nil {
		return route{}, fmt.Errorf("delivery: profile of %s: %w", req.TenantID, err)
	}
	if found {
		profile = &p
	}

	name := s.cfg.DefaultFrom.Name
	if profile != nil && profile.SenderName != "" {
		name = profile.SenderName
	}
	if req.From != nil && req.From.Name != "" {
		name = req.From.Name
	}

	if profile != nil && profile.Enabled && !forceDefault {
		return route{
			name:     RouteTenant,
			server:   transport.FromProfile(*profile),
			mailFrom: profile.Email,
			from:     message.Address{Name: name, Email: profile.Email},
			replyTo:  req.ReplyTo,
			profile:  profile,
			limits:   s.limits.InForce(profile),
			status:   status,
		}, nil
	}
	if s.cfg.Relay == nil {
		return route{}, ErrNoRoute
	}
	r := route{
		name:     RouteDefault,
		server:   *s.cfg.Relay,
		mailFrom: s.cfg.DefaultFrom.Address,
		from:     message.Address{Name: name, Email: s.cfg.DefaultFrom.Address},
		replyTo:  req.ReplyTo,
		profile:  profile,
		limits:   s.limits.InForce(profile),
		status:   status,
	}
	if len(r.replyTo) == 0 {
		// Replies should reach the tenant, not the platform's no-reply.
		switch {
		case profile != nil:
			r.replyTo = []message.Address{{Name: name, Email: profile.Email}}
		case req.From != nil && req.From.Email != "":
			r.replyTo = []message.Address{{Name: name, Email: req.From.Email}}
		}
	}
	return r, nil
}

// checkFrom refuses a from address the tenant's provider would rewrite or
// refuse: on the tenant route mail can only leave from the account's own
// address.
func (r route) checkFrom(req *message.Request) error {
	if r.name == RouteTenant && req.From != nil && req.From.Email != "" &&
		!strings.EqualFold(req.From.Email, r.profile.Email) {
		return &FromMismatchError{Account: r.profile.Email}
	}
	return nil
}

// CodeTokenFailed is the attempt and verify error of an OAuth2 token
// request that failed.
const CodeTokenFailed = "token_failed"

// withToken fills an xoauth2 server's access token; cached reuses the
// shared token cache (stored profiles only).
func (s *Service) withToken(ctx context.Context, p *tenant.Profile, srv transport.Server, cached bool) (transport.Server, *transport.Error) {
	if srv.Auth != tenant.AuthXOAuth2 || p.OAuth == nil {
		return srv, nil
	}
	var tok secret.String
	var err error
	if cached {
		tok, err = s.tokens.Token(ctx, oauth.Grant{TenantID: p.TenantID, Version: p.Version, OAuth: *p.OAuth})
	} else {
		var t *oauth2.Token
		if t, err = s.tokens.Fetch(ctx, *p.OAuth); err == nil {
			tok = secret.New(t.AccessToken)
		}
	}
	if err != nil {
		terr := &transport.Error{Code: CodeTokenFailed, Stage: transport.StageAuth, Message: err.Error(), Err: err}
		var oe *oauth.Error
		if errors.As(err, &oe) {
			terr.Hint = oe.Hint()
		}
		return srv, terr
	}
	srv.Token = tok
	return srv, nil
}

// forgetToken drops the cached token a server refused.
func (s *Service) forgetToken(ctx context.Context, p *tenant.Profile) {
	if err := s.tokens.Forget(ctx, oauth.Grant{TenantID: p.TenantID, Version: p.Version}); err != nil {
		s.log.Warn("forget refused token", "tenant_id", p.TenantID, "error", err)
	}
}

// Verify tests a profile: token (for xoauth2), TLS, login, quit.
func (s *Service) Verify(ctx context.Context, p tenant.Profile, stored bool) (transport.Verified, error) {
	start := time.Now()
	srv, terr := s.withToken(ctx, &p, transport.FromProfile(p), stored)
	if terr != nil {
		return transport.Verified{}, terr
	}
	v, err := s.dialer.Verify(ctx, srv)
	var te *transport.Error
	if stored && errors.As(err, &te) && te.Code == transport.CodeAuthFailed && srv.Auth == tenant.AuthXOAuth2 {
		// The cached token may have been revoked: once more with a new one.
		s.forgetToken(ctx, &p)
		if srv, terr = s.withToken(ctx, &p, srv, stored); terr != nil {
			return transport.Verified{}, terr
		}
		v, err = s.dialer.Verify(ctx, srv)
	}
	v.Latency = time.Since(start)
	if err == nil && stored {
		s.verified(ctx, p)
	}
	return v, err
}

// verified closes the stored profile's circuit and clears its last error
// after a successful verify. Clearing it is a change of the tenant
// (tenant.ChangeRecovered): the messages held for the account wake, as it
// answers again (see tenantChanged).
func (s *Service) verified(ctx context.Context, p tenant.Profile) {
	s.circuits.succeeded(circuitKey(route{name: RouteTenant, server: transport.FromProfile(p), profile: &p}))
	if p.LastError == nil {
		return
	}
	if err := s.profiles.SetLastError(ctx, p.TenantID, p.Version, nil); err != nil {
		s.log.Warn("clear profile error after verify", "tenant_id", p.TenantID, "error", err)
	}
}

// codeExceedsProviderLimit is the field code for a message with more
// recipients than the tenant's provider takes in one message.
const codeExceedsProviderLimit = "exceeds_provider_limit"

// checkRecipients refuses, on the tenant route, a message with more
// recipients than the account's provider accepts in one message (Google:
// 100 over SMTP). Sent anyway, the provider would refuse the excess
// recipients or the message, and may count it against the account; the
// caller can split it, which delivery cannot do for it since every
// recipient sees the same To and Cc. field names the recipients in the
// refusal.
func (r route) checkRecipients(field string, n int) error {
	limit := r.limits.MaxRecipients
	if r.name != RouteTenant || limit <= 0 || n <= limit {
		return nil
	}
	who := "the tenant's provider"
	if pr, ok := provider.ByName(r.profile.Provider); ok {
		who = pr.Label
	}
	var verr validation.Error
	where := "" // a submission's envelope
	if field == "to" {
		where = " in to, cc and bcc" // the JSON request's
	}
	verr.Add(field, codeExceedsProviderLimit, fmt.Sprintf("%d distinct recipients%s; %s accepts at most %d in one message: send it as several",
		n, where, who, limit))
	return &verr
}
