package submission

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbound-mail/outbound/internal/metrics"
)

// connTracker caps the open connections over all listeners, and those
// logged in as any one tenant, and knows each one, so that Shutdown can
// end the idle ones and cut the rest.
type connTracker struct {
	max          int
	maxPerTenant int
	loginTimeout time.Duration
	metrics      *metrics.Metrics
	onClose      func(*trackedConn)

	mu        sync.Mutex
	conns     map[*trackedConn]struct{}
	perTenant map[string]int // connections logged in, by tenant
	refusing  atomic.Int64   // connections being told 421 over the cap
}

func newConnTracker(max, maxPerTenant int, loginTimeout time.Duration, m *metrics.Metrics, onClose func(*trackedConn)) *connTracker {
	return &connTracker{max: max, maxPerTenant: maxPerTenant, loginTimeout: loginTimeout, metrics: m, onClose: onClose,
		conns: map[*trackedConn]struct{}{}, perTenant: map[string]int{}}
}

// trackedConn is one accepted connection. It outlives the go-smtp
// sessions on it (STARTTLS starts a new one), so what the session log
// line reports is kept here.
type trackedConn struct {
	net.Conn
	tracker  *connTracker
	listener string
	opened   time.Time
	inTx     atomic.Bool // between an accepted MAIL and the end of its transaction
	once     sync.Once
	noLogin  *time.Timer // closes the connection if no login comes in time

	mu       sync.Mutex
	tenant   string
	messages int // accepted (or replayed)
	refused  int // refused at DATA
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.noLogin.Stop()
		c.tracker.remove(c)
	})
	return err
}

// claimTenant counts the connection as logged in as id, unless id
// already has as many connections as a tenant may: then it answers false
// and the connection stays as it was. A connection logged in again (after
// a new EHLO) moves from its old tenant's count to id's.
func (c *trackedConn) claimTenant(id string) bool {
	t := c.tracker
	t.mu.Lock()
	c.mu.Lock()
	old := c.tenant
	if old != id && t.perTenant[id] >= t.maxPerTenant {
		c.mu.Unlock()
		t.mu.Unlock()
		return false
	}
	if old != id {
		t.release(old)
		t.perTenant[id]++
	}
	c.tenant = id
	c.mu.Unlock()
	t.mu.Unlock()
	c.noLogin.Stop()
	return true
}

// loginOverdue cuts a connection still without a login. It closes the
// socket only: go-smtp's goroutine then ends the session as for any
// broken connection.
func (c *trackedConn) loginOverdue() {
	c.mu.Lock()
	loggedIn := c.tenant != ""
	c.mu.Unlock()
	if !loggedIn {
		c.Conn.Close()
	}
}

func (c *trackedConn) count(accepted bool) {
	c.mu.Lock()
	if accepted {
		c.messages++
	} else {
		c.refused++
	}
	c.mu.Unlock()
}

func (t *connTracker) add(c net.Conn, listener string) (*trackedConn, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.conns) >= t.max {
		return nil, false
	}
	tc := &trackedConn{Conn: c, tracker: t, listener: listener, opened: time.Now()}
	tc.noLogin = time.AfterFunc(t.loginTimeout, tc.loginOverdue)
	t.conns[tc] = struct{}{}
	return tc, true
}

func (t *connTracker) remove(c *trackedConn) {
	t.mu.Lock()
	delete(t.conns, c)
	c.mu.Lock()
	t.release(c.tenant)
	c.mu.Unlock()
	t.mu.Unlock()
	t.onClose(c)
}

// release takes one connection off tenant's count; t.mu is held.
func (t *connTracker) release(tenant string) {
	if tenant == "" {
		return
	}
	if t.perTenant[tenant]--; t.perTenant[tenant] <= 0 {
		delete(t.perTenant, tenant)
	}
}

func (t *connTracker) open() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// closeIdle expires the pending read of every connection not inside a
// transaction; go-smtp then answers 421 and closes it.
func (t *connTracker) closeIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		if !c.inTx.Load() {
			c.Conn.SetReadDeadline(time.Now())
		}
	}
}

// closeAll cuts every connection.
func (t *connTracker) closeAll() {
	t.mu.Lock()
	conns := make([]*trackedConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// listener wraps ln so that its connections are counted against the cap
// and, when tlsCfg is set, spoken to in TLS from the first byte.
func (t *connTracker) listener(ln net.Listener, name string, tlsCfg *tls.Config) net.Listener {
	return &capListener{Listener: ln, tracker: t, name: name, tls: tlsCfg}
}

type capListener struct {
	net.Listener
	tracker *connTracker
	name    string
	tls     *tls.Config
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, ok := l.tracker.add(c, l.name)
		if !ok {
			l.tracker.metrics.SubmissionConnection(l.name, "over_capacity")
			go l.refuse(c)
			continue
		}
		l.tracker.metrics.SubmissionConnection(l.name, "accepted")
		if l.tls != nil {
			// go-smtp does the handshake itself, under its timeouts, when
			// it is given a *tls.Conn.
			return tls.Server(tc, l.tls), nil
		}
		return tc, nil
	}
}

// refuseTimeout bounds telling a connection over the cap why it is closed.
const refuseTimeout = 5 * time.Second

// refuse answers 421 (RFC 5321 section 3.8) and closes. The refusals in
// progress are themselves capped: beyond that a connection is closed
// without a word, so a flood costs no more than a bounded set of them.
func (l *capListener) refuse(c net.Conn) {
	defer c.Close()
	if l.tracker.refusing.Add(1) > int64(l.tracker.max) {
		l.tracker.refusing.Add(-1)
		return
	}
	defer l.tracker.refusing.Add(-1)
	c.SetDeadline(time.Now().Add(refuseTimeout))
	w := c
	if l.tls != nil {
		tc := tls.Server(c, l.tls)
		if tc.Handshake() != nil {
			return
		}
		w = tc
	}
	io.WriteString(w, "421 4.7.0 Too many connections, try again later\r\n")
}

// unwrap finds the trackedConn under what go-smtp holds: the connection
// itself, or a TLS connection over it (implicit TLS or after STARTTLS).
func unwrap(c net.Conn) *trackedConn {
	for {
		switch v := c.(type) {
		case *trackedConn:
			return v
		case *tls.Conn:
			c = v.NetConn()
		default:
			return nil
		}
	}
}
