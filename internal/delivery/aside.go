package delivery

import (
	"sync"
	"time"
)

// maxAside bounds how long a message set aside waits: past it the spacing
// is a guess about a backlog that will have changed.
const maxAside = 5 * time.Minute

// asides spaces the messages set aside because their account was busy
// (see ErrBusy). Each comes back about when the account's sessions can take
// it, rather than all at once to find the account still busy; and where
// tenants share an account (the default relay), each tenant has its own
// line and the lines take turns, so a tenant with thousands of messages
// waiting delays another's one message by a turn, not by its backlog.
type asides struct {
	mu       sync.Mutex
	accounts map[string]map[string]time.Time // account → tenant → when its last message set aside is due
}

func newAsides() *asides { return &asides{accounts: map[string]map[string]time.Time{}} }

// delay sets one of tenantID's messages aside on account and says how long
// it waits. spacing is the time between two messages the account takes.
func (a *asides) delay(account, tenantID string, spacing time.Duration, now time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.accounts) > 1024 {
		a.sweep(now)
	}
	lines := a.accounts[account]
	if lines == nil {
		lines = map[string]time.Time{}
		a.accounts[account] = lines
	}
	for t, due := range lines { // forget lines whose messages are all due
		if !due.After(now) {
			delete(lines, t)
		}
	}
	turns := len(lines)
	if _, waiting := lines[tenantID]; !waiting {
		turns++
	}
	due := lines[tenantID]
	if due.Before(now) {
		due = now
	}
	due = due.Add(spacing * time.Duration(turns))
	lines[tenantID] = due
	return min(due.Sub(now), maxAside)
}

// sweep forgets accounts whose set-aside messages are all due. a.mu is held.
func (a *asides) sweep(now time.Time) {
	for account, lines := range a.accounts {
		pending := false
		for _, due := range lines {
			pending = pending || due.After(now)
		}
		if !pending {
			delete(a.accounts, account)
		}
	}
}
