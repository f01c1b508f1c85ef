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

	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
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
	ErrFromMismatch = errors.New("delivery: from address is not the tenant's account address")
)

// route is how one message leaves: which server, which envelope sender,
// and the From and Reply-To headers.
type route struct {
	name     string
	server   transport.Server
	mailFrom string
	from     message.Address
	replyTo  []message.Address
	profile  *tenant.Profile // the tenant's profile, enabled or not; nil when none
}

// resolve picks the route for req: the tenant's enabled profile, else the
// default relay. forceDefault skips the profile (fallback_to_default).
func (s *Service) resolve(ctx context.Context, req *message.Request, forceDefault bool) (route, error) {
	var profile *tenant.Profile
	p, err := s.profiles.Get(ctx, req.TenantID)
	switch {
	case err == nil:
		profile = &p
	case !errors.Is(err, tenant.ErrNotFound):
		return route{}, fmt.Errorf("delivery: profile of %s: %w", req.TenantID, err)
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
		return fmt.Errorf("%w: the account sends as %s", ErrFromMismatch, r.profile.Email)
	}
	return nil
}
