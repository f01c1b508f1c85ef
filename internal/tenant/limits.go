package tenant

// Limits are the service-wide settings a profile's own limits replace:
// OUTBOUND_RATE_PER_MINUTE, OUTBOUND_RATE_PER_DAY and
// OUTBOUND_SMTP_MAX_CONNECTIONS.
type Limits struct {
	RatePerMinute  int
	RatePerDay     int
	MaxConnections int
}

// inForce is what a profile (nil: none) allows under the service limits d.
func (d Limits) inForce(p *Profile) Limits {
	l := d
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
// what is in force now: stored's own limits, or the service's d where it
// has none (stored nil: no profile yet). next nil is deleting the profile,
// which puts the tenant back on the service's rate; its connection cap
// then no longer applies to any account. A tenant's own admin may keep or
// lower the limits in force, never raise them: raising spends what the
// tenants share (the service's sending reputation, its workers and
// connections), which is the operator's to give.
func (d Limits) Raises(next, stored *Profile) []string {
	was, now := d.inForce(stored), d.inForce(next)
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
