package smtptest

import (
	"bytes"
	"crypto/tls"
	"net"
	"slices"
	"sync"
	"time"
)

// handshakeTimeout bounds the implicit-TLS handshake done before a
// connection is handed to go-smtp.
const handshakeTimeout = 10 * time.Second

// listener sits between the TCP listener and go-smtp. Its own accept loop
// counts and tracks every TCP connection, does the implicit-TLS handshake
// and the greeting stall in a goroutine per connection (so a stalled
// client never blocks the others), and only then hands the connection to
// go-smtp's Serve through Accept.
type listener struct {
	tcp   net.Listener
	srv   *Server
	tls   *tls.Config // non-nil for implicit TLS
	ready chan net.Conn
	once  sync.Once
}

func (l *listener) loop() {
	defer l.srv.wg.Done()
	for {
		raw, err := l.tcp.Accept()
		if err != nil {
			select {
			case <-l.srv.done:
			default:
				l.srv.logf("smtptest: accept: %v", err)
			}
			return
		}
		tc, ok := l.srv.track(raw)
		if !ok {
			continue
		}
		l.srv.wg.Add(1)
		go l.prepare(tc)
	}
}

func (l *listener) prepare(tc *trackedConn) {
	defer l.srv.wg.Done()
	var c net.Conn = tc
	if l.tls != nil {
		t := tls.Server(tc, l.tls)
		_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
		if err := t.Handshake(); err != nil {
			l.srv.logf("smtptest: conn %d: TLS handshake: %v", tc.id, err)
			tc.Close()
			return
		}
		_ = tc.SetDeadline(time.Time{})
		c = t
	}
	if slices.Contains(l.srv.opts.Without, "8BITMIME") {
		c = &hidingConn{Conn: c, line: []byte("250-8BITMIME\r\n")}
	}
	l.srv.stall(StageGreeting)
	select {
	case <-l.srv.done:
		tc.Close()
	case l.ready <- c:
	}
}

// Accept hands go-smtp the next prepared connection.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case <-l.srv.done:
		return nil, net.ErrClosed
	default:
	}
	select {
	case <-l.srv.done:
		return nil, net.ErrClosed
	case c := <-l.ready:
		return c, nil
	}
}

func (l *listener) Close() error {
	var err error
	l.once.Do(func() { err = l.tcp.Close() })
	return err
}

func (l *listener) Addr() net.Addr { return l.tcp.Addr() }

// trackedConn is one accepted TCP connection. It stays the bottom of the
// stack when TLS is layered on top (implicit or after STARTTLS), so closing
// it drops the connection the way a crashing server would.
type trackedConn struct {
	net.Conn
	id   int
	srv  *Server
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.srv.untrack(c) })
	return err
}

// hidingConn leaves one line out of what the server writes: an extension
// in its EHLO reply (go-smtp writes and flushes each line of a reply
// alone, and the extension is never the last line).
type hidingConn struct {
	net.Conn
	line []byte
}

func (c *hidingConn) Write(p []byte) (int, error) {
	if bytes.Contains(p, c.line) {
		if _, err := c.Conn.Write(bytes.ReplaceAll(p, c.line, nil)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// tlsConn is the TLS connection under a connection go-smtp holds, if any.
func tlsConn(c net.Conn) (*tls.Conn, bool) {
	if h, ok := c.(*hidingConn); ok {
		c = h.Conn
	}
	t, ok := c.(*tls.Conn)
	return t, ok
}

// rawConn finds the trackedConn under a connection go-smtp holds, which is
// either the trackedConn itself or a *tls.Conn over it, perhaps under a
// hidingConn.
func rawConn(c net.Conn) *trackedConn {
	if h, ok := c.(*hidingConn); ok {
		c = h.Conn
	}
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	tc, _ := c.(*trackedConn)
	return tc
}
