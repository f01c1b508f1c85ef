package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/outbound-mail/outbound/internal/queue"
)

// A message whose account is busy is kept aside in memory rather than
// written back to Redis and read again: with one busy account and many
// messages for it, that round would cost more than sending. It goes back to
// a worker when one of its account's sessions comes back, so an account's
// messages leave at the pace its sessions take them; and the tenants of one
// account (the default relay) take turns, so one tenant's backlog holds
// another's message back by a turn. A parked message holds no worker; its
// entry stays pending under this consumer, its claim kept fresh, so a crash
// loses nothing (another replica reclaims it).
const (
	parkBytes    = 64 << 20 // messages kept aside per process, payloads and parkOverhead
	parkOverhead = 1 << 10
	// A message is handed back after this long whatever its account does:
	// an account whose sessions never come back (its dial hangs) gets
	// another look, through its circuit.
	parkMax = 10 * time.Second
)

// parked is one message kept aside.
type parked struct {
	st    queue.Started
	since time.Time
	size  int // what it holds of parkBytes
}

// parkedAccount is one account's messages kept aside: a line per tenant,
// served in turn.
type parkedAccount struct {
	lines map[string][]parked
	turns []string // tenants with a line, in the order they are served
}

// parking is the messages kept aside. Released ones wait in ready for
// the unpark loop to hand them to workers.
type parking struct {
	mu       sync.Mutex
	accounts map[string]*parkedAccount
	bytes    int
	closed   bool // the service is stopping: nothing more is kept
	ready    []job
	wake     chan struct{} // something is ready
}

func newParking() *parking {
	return &parking{accounts: map[string]*parkedAccount{}, wake: make(chan struct{}, 1)}
}

// add keeps st aside for account; false when the memory for it is spent or
// the service is stopping.
func (k *parking) add(account, tenantID string, st queue.Started) bool {
	size := len(st.Record.Payload) + parkOverhead
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || k.bytes+size > parkBytes {
		return false
	}
	k.bytes += size
	a := k.accounts[account]
	if a == nil {
		a = &parkedAccount{lines: map[string][]parked{}}
		k.accounts[account] = a
	}
	if len(a.lines[tenantID]) == 0 {
		a.turns = append(a.turns, tenantID)
	}
	a.lines[tenantID] = append(a.lines[tenantID], parked{st: st, since: time.Now(), size: size})
	return true
}

// release hands the next message kept aside for account (the next
// tenant's turn) back to the workers: one of its sessions is free.
func (k *parking) release(account string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	a := k.accounts[account]
	if a == nil {
		return
	}
	tenantID := a.turns[0]
	line := a.lines[tenantID]
	p := line[0]
	line[0] = parked{}
	if line = line[1:]; len(line) > 0 {
		a.lines[tenantID] = line
		a.turns = append(a.turns[1:], tenantID) // the others' turn first
	} else {
		delete(a.lines, tenantID)
		a.turns = a.turns[1:]
	}
	if len(a.turns) == 0 {
		delete(k.accounts, account)
	}
	k.hand(p, true)
}

// releaseWhere hands back every message kept aside for an account that
// match picks: its tenant's profile changed, or its
// circuit opened.
func (k *parking) releaseWhere(match func(account, tenantID string) bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for account, a := range k.accounts {
		turns := a.turns[:0]
		for _, tenantID := range a.turns {
			if !match(account, tenantID) {
				turns = append(turns, tenantID)
				continue
			}
			for _, p := range a.lines[tenantID] {
				k.hand(p, false)
			}
			delete(a.lines, tenantID)
		}
		if a.turns = turns; len(turns) == 0 {
			delete(k.accounts, account)
		}
	}
}

// hand makes p ready for a worker; inTurn when a session of its account
// was just freed for it (see Pool.GetInTurn), not when it is handed back
// for another reason, so that those cannot crowd a silent account's
// waiting line. k.mu is held.
func (k *parking) hand(p parked, inTurn bool) {
	k.bytes -= p.size
	k.ready = append(k.ready, job{st: p.st, inTurn: inTurn})
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// expire hands back every message kept aside since before cutoff.
func (k *parking) expire(cutoff time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for account, a := range k.accounts {
		turns := a.turns[:0]
		for _, tenantID := range a.turns {
			line := a.lines[tenantID]
			for len(line) > 0 && line[0].since.Before(cutoff) {
				k.hand(line[0], false)
				line = line[1:]
			}
			if len(line) > 0 {
				a.lines[tenantID] = line
				turns = append(turns, tenantID)
			} else {
				delete(a.lines, tenantID)
			}
		}
		if a.turns = turns; len(turns) == 0 {
			delete(k.accounts, account)
		}
	}
}

// next waits for a message handed back and takes it; false once ctx ends.
// Every parkMax/4 it hands back the messages kept aside too long.
func (k *parking) next(ctx context.Context) (job, bool) {
	tick := time.NewTicker(parkMax / 4)
	defer tick.Stop()
	for {
		k.mu.Lock()
		if len(k.ready) > 0 {
			j := k.ready[0]
			k.ready[0] = job{}
			k.ready = k.ready[1:]
			k.mu.Unlock()
			return j, true
		}
		k.mu.Unlock()
		select {
		case <-ctx.Done():
			return job{}, false
		case <-k.wake:
		case <-tick.C:
			k.expire(time.Now().Add(-parkMax))
		}
	}
}

// close takes every message still aside or ready, and keeps no more.
func (k *parking) close() []queue.Started {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	var out []queue.Started
	for _, j := range k.ready {
		out = append(out, j.st)
	}
	for _, a := range k.accounts {
		for _, line := range a.lines {
			for _, p := range line {
				out = append(out, p.st)
			}
		}
	}
	k.accounts, k.ready, k.bytes = map[string]*parkedAccount{}, nil, 0
	return out
}
