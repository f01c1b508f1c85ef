package tenant

import "github.com/outbound-mail/outbound/internal/provider"

// Limits are what one tenant's sending may use. As service settings
// (OUTBOUND_RATE_PER_MINUTE, OUTBOUND_RATE_PER_DAY and
// OUTBOUND_SMTP_MAX_CONNECTIONS) they are what a profile's own limits
// replace; InForce gives a profile's.
type Limits struct {
	RatePerMinute  int
	RatePerDay     int
	MaxConnections int
	// PacePerMinute spaces messages to the account (0: no pace).
	PacePerMinute int
	// MaxRecipients is the most recipients one message to the account may
	// have (0: only the service's OUTBOUND_MAX_RECIPIENTS).
	MaxRecipients int
}

// InForce is what a profile (nil: none) allows under the service limits
// d. Each limit is the profile's own where it sets one; else, for a
// profile that names a provider, the provider's published limit where
// that is below the service's, so that the provider does not suspend the
// tenant's account; else the service's. A provider's limit never raises
// one: that is the operator's to give (see Raises). Pace and recipients
// per message have no service setting; only the provider or the profile
// sets them.
func (d Limits) InForce(p *Profile) Limits {
	l := Limits{RatePerMinute: d.RatePerMinute, RatePerDay: d.RatePerDay, MaxConnections: d.MaxConnections}
	if p == nil {
		return l
	}
	if pr, ok := provider.ByName(p.Provider); ok {
		pl := pr.Limits
		l.RatePerMinute = lower(l.RatePerMinute, pl.PerMinute)
		l.RatePerDay = lower(l.RatePerDay, pl.PerDay)
		l.MaxConnections = lower(l.MaxConnections, pl.MaxConnections)
		l.PacePerMinute = pl.PacePerMinute
		l.MaxRecipients = pl.MaxRecipients
	}
	if p.RateLimit != nil {
		l.RatePerMinute, l.RatePerDay = p.RateLimit.PerMinute, p.RateLimit.PerDay
	}
	if p.MaxConnections > 0 {
		l.MaxConnections = p.MaxConnections
	}
	if p.PacePerMinute > 0 {
		l.PacePerMinute = p.PacePerMinute
	}
	return l
}

// lower is the provider's limit where it has one below the service's.
func lower(service, provider int) int {
	if provider > 0 && (service <= 0 || provider < service) {
		return provider
	}
	return service
}

// allowance is what the operator gives a profile (nil: none): its own
// limits, or the service's where it has none. Provider limits are not
// part of it: they only ever lower what is in force, to protect the
// tenant's own account.
func (d Limits) allowance(p *Profile) Limits {
	l := Limits{RatePerMinute: d.RatePerMinute, RatePerDay: d.RatePerDay, MaxConnections: d.MaxConnections}
	if p == nil {
		return l
	}
	if p.RateLimit != nil {
		l.RatePerMinute, l.RatePerDay = p.RateLimit.PerMinute, p.RateLimit.PerDay
	}
	if p.MaxConnections > 0 {
		l.MaxConnections = p.MaxConnections
	}
	return l
}

// Raises names the limits that replacing stored with next raises above
// the allowance now: stored's own limits, or the service's d where it has
// none (stored nil: no profile yet). next nil is deleting the profile,
// which puts the tenant back on the service's rate; its connection cap
// then no longer applies to any account. A tenant's own admin may keep or
// lower its allowance, never raise it: raising spends what the tenants
// share (the service's sending reputation, its workers and connections),
// which is the operator's to give. A provider's defaults are not an
// allowance: a tenant's admin may set limits above them, up to the
// allowance, or leave them by changing or deleting the profile.
func (d Limits) Raises(next, stored *Profile) []string {
	was, now := d.allowance(stored), d.allowance(next)
	var raised []string
	if now.RatePerMinute > was.RatePerMinute {
		raised = append(raised, "rate_limit.per_minute")
	}
	if now.RatePerDay > was.RatePerDay {
		raised = append(raised, "rate_limit.per_day")
	}
	if next != nil && now.MaxConnections > was.MaxConnections {
		raised = append(raised, "max_connections")
	}
	return raised
}
