package delivery

import (
	"context"
	"strings"

	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
)

// tenantChanged applies the rules of a tenant change. It is the one place
// they live: the tenant store calls it (see tenant.Store.Watch, wired in
// New) after every write that changes what delivery does for the tenant,
// in the replica that wrote and, over Redis, in every other one; no
// handler calls it, so none can forget it.
//
//   - A new profile or a deleted one ends the old configuration: whatever
//     this replica keeps for the tenant's other accounts (pooled sessions,
//     counted circuit failures, sending-quota holds) is dropped, so a
//     session logged in with a password the tenant replaced or removed
//     never carries another message.
//   - Every change but a pause makes the tenant's messages go again now:
//     those kept aside in memory are handed back, and those held in Redis
//     for the tenant's account (a refused login, an open circuit, a quota,
//     a pause) become due. The fault may be fixed, the tenant may now use
//     another account or the default relay, or the account just answered.
//
// The profile cache needs nothing here: the store invalidates it on every
// write, on every replica.
func (s *Service) tenantChanged(ctx context.Context, c tenant.Change) {
	id := c.TenantID
	switch c.Kind {
	case tenant.ChangePaused:
		return // its messages wait where they are until it resumes
	case tenant.ChangeProfile, tenant.ChangeDeleted:
		s.forgetAccounts(ctx, id)
	}
	s.parking.releaseWhere(func(_, t string) bool { return t == id })
	if c.Remote {
		return // the replica that wrote woke them in Redis
	}
	if _, err := s.queue.WakeHeld(ctx, id); err != nil {
		// The write stands; held messages still go at their next retry.
		s.log.Warn("wake held messages", "tenant_id", id, "kind", string(c.Kind), "error", err)
	}
}

// forgetAccounts drops what this replica keeps for the tenant's accounts
// other than the one its profile now names (none when it has no enabled
// profile): their idle sessions are closed and their busy ones closed when
// given back, their quota holds lifted, and every circuit of the tenant
// forgotten, a circuit being of one profile version.
func (s *Service) forgetAccounts(ctx context.Context, tenantID string) {
	keep := ""
	p, found, _, err := s.profiles.Load(ctx, tenantID)
	switch {
	case err != nil:
		// Unknown: keep nothing. The worst is one login more.
	case found && p.Enabled:
		keep = transport.FromProfile(p).Key()
	}
	s.pool.Retire(tenantID, keep)
	s.circuits.forget(func(key string) bool { return strings.HasPrefix(key, tenantID+"/") })
	s.holdMu.Lock()
	for key, h := range s.holds {
		if h.tenant == tenantID && key != keep {
			delete(s.holds, key)
		}
	}
	s.holdMu.Unlock()
}

// stopWatching ends the change notices from other replicas; a change this
// replica makes while its last messages finish is still applied.
func (s *Service) stopWatching() {
	s.watchOnce.Do(func() {
		if err := s.stopWatch(); err != nil {
			s.log.Warn("stop watching tenant changes", "error", err)
		}
	})
}
