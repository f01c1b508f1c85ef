package delivery

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/outbound-mail/outbound/internal/transport"
)

// dialFunc opens an authenticated session; *transport.Dialer.Dial fits.
type dialFunc func(ctx context.Context, srv transport.Server) (*transport.Conn, error)

// ErrBusy means every session an account may have is in use and as many
// callers already wait for one, or the wait ran out: the caller should set
// its message aside rather than hold a worker for the account.
var ErrBusy = errors.New("delivery: every session of the account is busy")

// Defaults of a Pool's bounds; see Pool.
const (
	// A session normally turns over in well under a second (a transaction
	// is one or two round trips); a caller that waited this long is
	// behind a slow or unreachable server and is better set aside.
	defaultMaxWait = 2 * time.Second
	// Idle sessions kept across all accounts: each holds a socket and a TLS
	// state (tens of KB), and with tens of thousands of tenants each on its
	// own account the idle ones would otherwise pile up until the reaper
	// runs. Past it a session given back is closed, and its account's next
	// message logs in again.
	defaultMaxIdle = 2048
	// A guess at a message's time on a session, for an account not yet
	// measured: a transaction to a provider tens of milliseconds away.
	unmeasuredHold = 100 * time.Millisecond
)

// Pool keeps authenticated SMTP sessions per account (tenant, server and
// credentials, see transport.Server.Key) so that many messages share one
// login: a fresh TLS handshake and AUTH per message is the slowest way to
// send mail. It caps the sessions open per account, because providers such
// as Gmail refuse more than a few at once.
//
// Sessions of an account are dialled one at a time: while a dial is in
// progress, other callers wait for it, or for a session given back, and
// the next dial starts only if callers are still waiting when it ends. A
// login costs several round trips and a transaction two, so a handful of
// messages for one account share a session or two instead of each opening
// its own, while a steady stream still ramps up to the cap.
//
// The pool is also where one account's trouble stops. At most as many
// callers wait as the account may have sessions (twice that for an account
// whose sessions turn over fast, see waitBound), each for at most maxWait;
// beyond that Get answers ErrBusy at once, so a slow or unreachable server
// holds few workers. A dial that fails while the account has no session
// open fails every caller waiting for it at once, instead of each waiting
// for a dial of its own to fail in turn.
type Pool struct {
	dial        dialFunc
	maxPerKey   int
	idleTimeout time.Duration
	maxWait     time.Duration
	maxIdle     int

	mu        sync.Mutex
	accounts  map[string]*account
	idleTotal int
	leased    map[*transport.Conn]time.Time // sessions in use, since when
	// retired are accounts whose tenant changed its profile away from
	// them (see Retire), since when; doomed are their sessions still in
	// use, closed when given back.
	retired map[string]time.Time
	doomed  map[*transport.Conn]bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

type account struct {
	tenant  string // whose account it is; "" for the default relay
	open    int    // sessions dialled or being dialled and not yet closed, idle or in use
	dialing int    // dials in progress
	max     int    // the cap, as the latest caller gave it
	idle    []idleConn
	waiters []chan handoff // FIFO
	// hold is how long a message recently held a session (smoothed): what
	// the account's sessions can carry, for pacing messages set aside.
	hold time.Duration
}

// handoff is what a waiting caller is given.
type handoff struct {
	conn *transport.Conn // a session given back
	dial bool            // a slot is yours: dial
	err  error           // the dial everyone waited for failed
}

type idleConn struct {
	conn  *transport.Conn
	since time.Time
}

// NewPool starts a pool and its idle reaper.
func NewPool(dial dialFunc, maxPerKey int, idleTimeout time.Duration) *Pool {
	p := &Pool{dial: dial, maxPerKey: maxPerKey, idleTimeout: idleTimeout, maxWait: defaultMaxWait,
		maxIdle: defaultMaxIdle, accounts: map[string]*account{}, leased: map[*transport.Conn]time.Time{},
		retired: map[string]time.Time{}, doomed: map[*transport.Conn]bool{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.reap()
	return p
}

// Get returns a session for srv: an idle one (reused=true), a new one, or
// the next one another caller gives back. maxConns caps the account's
// sessions (0: the pool's default); the latest caller's cap applies. It
// answers ErrBusy when the account already has as many callers waiting as
// it may have sessions, or when no session came within the pool's wait.
func (p *Pool) Get(ctx context.Context, srv transport.Server, maxConns int) (conn *transport.Conn, reused bool, err error) {
	return p.get(ctx, srv, maxConns, true)
}

// GetInTurn is Get for a message whose turn came (it was set aside and
// one of the account's sessions was just given back): it waits past the
// bound on waiting callers, so that newer callers cannot push it aside
// again.
func (p *Pool) GetInTurn(ctx context.Context, srv transport.Server, maxConns int) (conn *transport.Conn, reused bool, err error) {
	return p.get(ctx, srv, maxConns, false)
}

func (p *Pool) get(ctx context.Context, srv transport.Server, maxConns int, bounded bool) (conn *transport.Conn, reused bool, err error) {
	key := srv.Key()
	if maxConns <= 0 {
		maxConns = p.maxPerKey
	}
	p.mu.Lock()
	if _, ok := p.retired[key]; ok {
		p.mu.Unlock()
		return nil, false, ErrAccountChanged
	}
	a := p.accounts[key]
	if a == nil {
		a = &account{tenant: srv.Tenant}
		p.accounts[key] = a
	}
	a.max = maxConns
	if n := len(a.idle); n > 0 {
		c := a.idle[n-1].conn // most recently used: the least likely to have been closed by the server
		a.idle = a.idle[:n-1]
		p.idleTotal--
		p.leased[c] = time.Now()
		p.mu.Unlock()
		return c, true, nil
	}
	if a.open < a.max && a.dialing == 0 {
		a.open++
		a.dialing++
		p.mu.Unlock()
		return p.dialSlot(ctx, key, srv)
	}
	if bounded && len(a.waiters) >= p.waitBound(a, a.max) {
		p.mu.Unlock()
		return nil, false, ErrBusy
	}
	ch := make(chan handoff, 1)
	a.waiters = append(a.waiters, ch)
	p.mu.Unlock()

	wait := time.NewTimer(p.maxWait)
	defer wait.Stop()
	select {
	case h := <-ch:
		switch {
		case h.err != nil:
			return nil, false, h.err
		case h.dial:
			return p.dialSlot(ctx, key, srv)
		}
		return h.conn, true, nil
	case <-ctx.Done():
		p.giveUp(key, a, ch)
		return nil, false, ctx.Err()
	case <-wait.C:
		p.giveUp(key, a, ch)
		return nil, false, ErrBusy
	}
}

// giveUp takes a waiting caller out of the line; whatever it was handed
// just as it gave up is passed on.
func (p *Pool) giveUp(key string, a *account, ch chan handoff) {
	p.mu.Lock()
	removed := removeWaiter(a, ch)
	p.mu.Unlock()
	if removed {
		return
	}
	switch h := <-ch; {
	case h.conn != nil:
		p.Put(h.conn, true)
	case h.dial:
		p.dialEnded(key, nil, nil)
	}
}

// dialSlot dials on a slot already counted in open and dialing.
func (p *Pool) dialSlot(ctx context.Context, key string, srv transport.Server) (*transport.Conn, bool, error) {
	c, err := p.dial(ctx, srv)
	// A dial cut short by its caller's own deadline says nothing about the
	// account; any other failure would meet every caller waiting.
	var failed error
	if err != nil && ctx.Err() == nil {
		failed = err
	}
	p.dialEnded(key, c, failed)
	if err != nil {
		return nil, false, err
	}
	return c, false, nil
}

// dialEnded records the end of a dial: a session (leased to the dialler)
// or a failure, which frees its slot. When the account's own failure
// (failed) leaves it with no session, every waiting caller gets it.
func (p *Pool) dialEnded(key string, c *transport.Conn, failed error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.accounts[key]
	if a == nil {
		if c != nil { // its account was retired while it dialled
			p.doomed[c] = true
		}
		return
	}
	a.dialing--
	if c != nil {
		p.leased[c] = time.Now()
		return
	}
	a.open--
	if failed != nil && a.open == 0 {
		for _, ch := range a.waiters {
			ch <- handoff{err: sharedFailure(failed)}
		}
		a.waiters = nil
	}
	p.next(key, a)
}

// SharedDialError is what a caller that waited for another caller's dial
// gets when that dial failed: the dial's own error (in a copy of its own,
// which its attempt may annotate). It is one failure of the account, which
// the caller that dialled already counts.
type SharedDialError struct{ Err error }

func (e *SharedDialError) Error() string { return e.Err.Error() }
func (e *SharedDialError) Unwrap() error { return e.Err }

func sharedFailure(err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		c := *te
		err = &c
	}
	return &SharedDialError{Err: err}
}

// freeSlot records a closed session.
func (p *Pool) freeSlot(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a := p.accounts[key]; a != nil {
		a.open--
		p.next(key, a)
	}
}

// next lets the first waiting caller dial when the account is under its
// cap and no dial is in progress, and forgets an account with nothing
// left. p.mu is held.
func (p *Pool) next(key string, a *account) {
	if len(a.waiters) > 0 && a.open < a.max && a.dialing == 0 {
		ch := a.waiters[0]
		a.waiters = a.waiters[1:]
		a.open++
		a.dialing++
		ch <- handoff{dial: true}
		return
	}
	if a.open == 0 && len(a.idle) == 0 && len(a.waiters) == 0 {
		delete(p.accounts, key)
	}
}

// Put gives a session back. A session that cannot carry another message
// (reusable false) is closed and its slot freed, and so is one beyond the
// pool's bound on idle sessions.
func (p *Pool) Put(c *transport.Conn, reusable bool) {
	key := c.Server().Key()
	p.mu.Lock()
	a := p.accounts[key]
	if since, ok := p.leased[c]; ok {
		delete(p.leased, c)
		if a != nil {
			a.hold = smooth(a.hold, time.Since(since))
		}
	}
	if p.doomed[c] {
		delete(p.doomed, c)
		p.mu.Unlock()
		c.Close()
		return // its slot went with its retired account
	}
	if !reusable || p.closed || a == nil || len(a.waiters) == 0 && p.idleTotal >= p.maxIdle {
		p.mu.Unlock()
		c.Close()
		p.freeSlot(key)
		return
	}
	if len(a.waiters) > 0 {
		ch := a.waiters[0]
		a.waiters = a.waiters[1:]
		p.leased[c] = time.Now()
		p.mu.Unlock()
		ch <- handoff{conn: c}
		return
	}
	a.idle = append(a.idle, idleConn{conn: c, since: time.Now()})
	p.idleTotal++
	p.mu.Unlock()
}

// smooth is an exponentially weighted mean giving the newest sample 1/8.
func smooth(mean, sample time.Duration) time.Duration {
	if mean == 0 {
		return sample
	}
	return mean + (sample-mean)/8
}

// Spacing is the time between two messages the account's sessions can
// take, as recently measured: its cap of sessions, each held for about
// as long as the last messages held one. Before anything was measured
// (the first dial is in progress) a message is taken to hold a session
// for unmeasuredHold.
func (p *Pool) Spacing(srv transport.Server, maxConns int) time.Duration {
	if maxConns <= 0 {
		maxConns = p.maxPerKey
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.accounts[srv.Key()]
	if a == nil || a.hold == 0 {
		return unmeasuredHold / time.Duration(maxConns)
	}
	return a.hold / time.Duration(maxConns)
}

// waitBound is how many callers may wait for the account's sessions: as
// many as it may have, or up to twice that while its sessions turn over
// fast enough to serve them within the pool's wait. A slow or silent
// account holds few workers; a fast, busy one keeps its sessions fed.
// maxConns is the account's cap. p.mu is held.
func (p *Pool) waitBound(a *account, maxConns int) int {
	if a.hold <= 0 {
		return maxConns
	}
	servable := int(time.Duration(maxConns) * p.maxWait / a.hold)
	return min(max(servable, maxConns), 2*maxConns)
}

// Busy reports whether Get would answer ErrBusy at once for srv, so a
// caller can set its message aside before preparing it.
func (p *Pool) Busy(srv transport.Server, maxConns int) bool {
	if maxConns <= 0 {
		maxConns = p.maxPerKey
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.accounts[srv.Key()]
	if a == nil || len(a.idle) > 0 || a.open < maxConns && a.dialing == 0 {
		return false
	}
	return len(a.waiters) >= p.waitBound(a, maxConns)
}

// ErrAccountChanged is what Get answers for an account Retire retired:
// the caller's route is out of date, and its message is to be routed
// again.
var ErrAccountChanged = errors.New("delivery: the tenant's profile no longer names this account")

// retiredMemory is how long a retired account stays refused: longer than
// any message takes from routing to asking for a session (see
// Config.MessageTimeout's default), so none routed before the change
// logs in with the old credentials after it.
const retiredMemory = 10 * time.Minute

// Retire ends the tenant's sessions of every account but keep (the one
// its profile now names; "" for none): idle ones are quit at once, those
// in use closed when given back, callers waiting for one answered
// ErrAccountChanged, and Get refuses the account from now on, until a
// later Retire keeps it again (the tenant went back to it). A session
// another message is in the middle of finishes that message. The default
// relay's sessions belong to no tenant and are never retired.
func (p *Pool) Retire(tenantID, keep string) {
	if tenantID == "" {
		return
	}
	now := time.Now()
	var idle []*transport.Conn
	var waiting []chan handoff
	p.mu.Lock()
	for key, since := range p.retired {
		if key == keep || now.Sub(since) > retiredMemory {
			delete(p.retired, key)
		}
	}
	for key, a := range p.accounts {
		if a.tenant != tenantID || key == keep {
			continue
		}
		for _, ic := range a.idle {
			idle = append(idle, ic.conn)
		}
		p.idleTotal -= len(a.idle)
		waiting = append(waiting, a.waiters...)
		a.idle, a.waiters = nil, nil
		delete(p.accounts, key)
		p.retired[key] = now
	}
	for c := range p.leased {
		if _, ok := p.retired[c.Server().Key()]; ok {
			p.doomed[c] = true
		}
	}
	p.mu.Unlock()
	for _, ch := range waiting {
		ch <- handoff{err: ErrAccountChanged}
	}
	if len(idle) > 0 {
		// QUIT waits for the server's answer: not in the writer's request.
		go func() {
			for _, c := range idle {
				c.Quit()
			}
		}()
	}
}

func removeWaiter(a *account, ch chan handoff) bool {
	for i, w := range a.waiters {
		if w == ch {
			a.waiters = append(a.waiters[:i], a.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// Open reports the sessions open (idle or in use) across all accounts.
func (p *Pool) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, a := range p.accounts {
		n += a.open
	}
	return n
}

// reap closes sessions idle longer than idleTimeout: servers drop idle
// clients on their own schedule, and an idle session holds a slot.
func (p *Pool) reap() {
	defer close(p.done)
	every := min(p.idleTimeout/2, 5*time.Second)
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.closeIdle(time.Now().Add(-p.idleTimeout))
		}
	}
}

// closeIdle quits every idle session idle since before cutoff.
func (p *Pool) closeIdle(cutoff time.Time) {
	var expired []*transport.Conn
	p.mu.Lock()
	for key, a := range p.accounts {
		kept := a.idle[:0]
		for _, ic := range a.idle {
			if ic.since.Before(cutoff) {
				expired = append(expired, ic.conn)
				a.open--
				p.idleTotal--
			} else {
				kept = append(kept, ic)
			}
		}
		a.idle = kept
		if a.open == 0 && len(a.waiters) == 0 {
			delete(p.accounts, key)
		}
	}
	p.mu.Unlock()
	for _, c := range expired {
		c.Quit()
	}
}

// Close quits every idle session and closes sessions given back later.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	p.closeIdle(time.Now().Add(time.Hour))
}
