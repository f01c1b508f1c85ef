package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/outbound-mail/outbound/internal/transport"
)

// dialFunc opens an authenticated session; *transport.Dialer.Dial fits.
type dialFunc func(ctx context.Context, srv transport.Server) (*transport.Conn, error)

// Pool keeps authenticated SMTP sessions per account (server plus
// credentials, see transport.Server.Key) so that many messages share one
// login: a fresh TLS handshake and AUTH per message is the slowest way to
// send mail. It caps the sessions open per account, because providers such
// as Gmail refuse more than a few at once; callers beyond the cap wait for
// a session to come back.
//
// Sessions of an account are dialled one at a time: while a dial is in
// progress, other callers wait for it, or for a session given back, and
// the next dial starts only if callers are still waiting when it ends. A
// login costs several round trips and a transaction two, so a handful of
// messages for one account share a session or two instead of each opening
// its own, while a steady stream still ramps up to the cap.
type Pool struct {
	dial        dialFunc
	maxPerKey   int
	idleTimeout time.Duration

	mu       sync.Mutex
	accounts map[string]*account
	closed   bool
	stop     chan struct{}
	done     chan struct{}
}

type account struct {
	open    int // sessions dialled or being dialled and not yet closed, idle or in use
	dialing int // dials in progress
	max     int // the cap, as the latest caller gave it
	idle    []idleConn
	waiters []chan *transport.Conn // FIFO; a nil hand-off means "dial, a slot is yours"
}

type idleConn struct {
	conn  *transport.Conn
	since time.Time
}

// NewPool starts a pool and its idle reaper.
func NewPool(dial dialFunc, maxPerKey int, idleTimeout time.Duration) *Pool {
	p := &Pool{dial: dial, maxPerKey: maxPerKey, idleTimeout: idleTimeout,
		accounts: map[string]*account{}, stop: make(chan struct{}), done: make(chan struct{})}
	go p.reap()
	return p
}

// Get returns a session for srv: an idle one (reused=true), a new one, or
// the next one another caller gives back. maxConns caps the account's
// sessions (0: the pool's default); the latest caller's cap applies.
func (p *Pool) Get(ctx context.Context, srv transport.Server, maxConns int) (conn *transport.Conn, reused bool, err error) {
	key := srv.Key()
	if maxConns <= 0 {
		maxConns = p.maxPerKey
	}
	p.mu.Lock()
	a := p.accounts[key]
	if a == nil {
		a = &account{}
		p.accounts[key] = a
	}
	a.max = maxConns
	if n := len(a.idle); n > 0 {
		c := a.idle[n-1].conn // most recently used: the least likely to have been closed by the server
		a.idle = a.idle[:n-1]
		p.mu.Unlock()
		return c, true, nil
	}
	if a.open < a.max && a.dialing == 0 {
		a.open++
		a.dialing++
		p.mu.Unlock()
		return p.dialSlot(ctx, key, srv)
	}
	ch := make(chan *transport.Conn, 1)
	a.waiters = append(a.waiters, ch)
	p.mu.Unlock()

	select {
	case c := <-ch:
		if c == nil {
			return p.dialSlot(ctx, key, srv)
		}
		return c, true, nil
	case <-ctx.Done():
		p.mu.Lock()
		removed := removeWaiter(a, ch)
		p.mu.Unlock()
		if !removed { // handed something just as we gave up: pass it on
			if c := <-ch; c != nil {
				p.Put(c, true)
			} else {
				p.dialEnded(key, false)
			}
		}
		return nil, false, ctx.Err()
	}
}

// dialSlot dials on a slot already counted in open and dialing.
func (p *Pool) dialSlot(ctx context.Context, key string, srv transport.Server) (*transport.Conn, bool, error) {
	c, err := p.dial(ctx, srv)
	p.dialEnded(key, err == nil)
	if err != nil {
		return nil, false, err
	}
	return c, false, nil
}

// dialEnded records the end of a dial; a failed one frees its slot.
func (p *Pool) dialEnded(key string, ok bool) { p.ended(key, true, !ok) }

// freeSlot records a closed session.
func (p *Pool) freeSlot(key string) { p.ended(key, false, true) }

// ended records a dial that ended and a slot that was freed, and lets the
// next waiting caller dial.
func (p *Pool) ended(key string, dialEnded, slotFreed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.accounts[key]
	if a == nil {
		return
	}
	if dialEnded {
		a.dialing--
	}
	if slotFreed {
		a.open--
	}
	p.next(key, a)
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
		ch <- nil
		return
	}
	if a.open == 0 && len(a.idle) == 0 && len(a.waiters) == 0 {
		delete(p.accounts, key)
	}
}

// Put gives a session back. A session that cannot carry another message
// (reusable false) is closed and its slot freed.
func (p *Pool) Put(c *transport.Conn, reusable bool) {
	key := c.Server().Key()
	p.mu.Lock()
	a := p.accounts[key]
	if !reusable || p.closed || a == nil {
		p.mu.Unlock()
		c.Close()
		p.freeSlot(key)
		return
	}
	if len(a.waiters) > 0 {
		ch := a.waiters[0]
		a.waiters = a.waiters[1:]
		p.mu.Unlock()
		ch <- c
		return
	}
	a.idle = append(a.idle, idleConn{conn: c, since: time.Now()})
	p.mu.Unlock()
}

func removeWaiter(a *account, ch chan *transport.Conn) bool {
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
