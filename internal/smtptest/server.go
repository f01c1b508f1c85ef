// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) in
// the test process, on 127.0.0.1 and a free port: implicit TLS, STARTTLS or
// plain, AUTH PLAIN and LOGIN against a user table, with certificates from a
// throwaway CA. It records every message exactly as received and can be told
// to misbehave (refuse, stall, drop the connection) through Hooks.
package smtptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mode is how the server secures connections.
type Mode int

const (
	// ImplicitTLS speaks TLS from the first byte (port 465 style).
	ImplicitTLS Mode = iota
	// STARTTLS listens in plain text and offers STARTTLS (port 587 style).
	STARTTLS
	// STARTTLSNotOffered listens in plain text and never offers STARTTLS,
	// as a misconfigured server or a downgrading attacker would: a client
	// that requires STARTTLS must give up without sending credentials
	// (check Server.AuthAttempts). It behaves exactly like Plain; the name
	// says what the test means.
	STARTTLSNotOffered
	// Plain listens in plain text without TLS.
	Plain
)

func (m Mode) String() string {
	switch m {
	case ImplicitTLS:
		return "ImplicitTLS"
	case STARTTLS:
		return "STARTTLS"
	case STARTTLSNotOffered:
		return "STARTTLSNotOffered"
	case Plain:
		return "Plain"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Options configure a Server. The zero value is an implicit-TLS server that
// requires AUTH and knows no users.
type Options struct {
	// Users maps username to password for AUTH.
	Users map[string]string
	// AcceptAnyAuth accepts every username and password.
	AcceptAnyAuth bool
	// NoAuth lets MAIL through without AUTH. By default MAIL before a
	// successful AUTH is answered 530 5.7.0 (RFC 4954 section 6).
	NoAuth bool
	// Mechanisms are the SASL mechanisms offered: "PLAIN", "LOGIN",
	// "XOAUTH2", "OAUTHBEARER". Default: PLAIN only.
	Mechanisms []string
	// Bearer checks an OAuth2 access token (XOAUTH2, OAUTHBEARER); nil
	// refuses every token.
	Bearer func(username, token string) bool
	// TLS is the server certificate. Default: a leaf for 127.0.0.1, ::1
	// and localhost from a fresh CA, exposed as Server.CA.
	TLS *tls.Certificate
	// Mode selects implicit TLS (default), STARTTLS or plain text.
	Mode Mode
	// AllowInsecureAuth offers and accepts AUTH on connections without
	// TLS (Plain, STARTTLSNotOffered, STARTTLS before the upgrade).
	// Without it such AUTH is not offered and is answered 523 5.7.10.
	AllowInsecureAuth bool
	// Hooks inject faults; see SetHooks to change them later.
	Hooks Hooks
	// Domain is the name in the greeting. Default: smtptest.local.
	Domain string
	// Without names EHLO keywords the server does not offer, as an older
	// server would: "SMTPUTF8", or "8BITMIME" (not with STARTTLS, since
	// go-smtp always offers it and it is taken out of the reply on the
	// connection, below TLS started in the session).
	Without []string
	// Addr is the address to listen on. Default: 127.0.0.1 on a free
	// port. A test that must stand in for a provider's server on that
	// provider's own port (465, 587) listens on another loopback address,
	// such as 127.0.0.2:465, which needs root or CAP_NET_BIND_SERVICE.
	Addr string
}

// Message is one message the server received.
type Message struct {
	From     string
	To       []string
	Data     []byte // the DATA exactly as received, dot-unstuffed, without the final dot
	Body     string // MAIL FROM's BODY parameter: "", "7BIT" or "8BITMIME"
	UTF8     bool   // MAIL FROM said SMTPUTF8
	Username string // who was logged in, "" without AUTH
	ConnID   int    // which connection carried it, from 1 in accept order
	TLS      bool   // whether the connection was encrypted
	At       time.Time
}

// Server is a running test SMTP server. Its methods are safe for
// concurrent use. Messages and the slices inside them are shared: treat
// them as read-only.
type Server struct {
	// CA signed the server certificate; nil when Options.TLS was given.
	CA *CA

	opts  Options
	smtp  *smtp.Server
	ln    *listener
	log   *logSink
	done  chan struct{}
	wg    sync.WaitGroup // accept loop and connection preparation
	serve chan struct{}  // closed when smtp.Serve returns
	close sync.Once

	mu           sync.Mutex
	users        map[string]string
	hooks        Hooks
	messages     []Message
	changed      chan struct{} // closed and replaced when a message is recorded
	conns        map[*trackedConn]struct{}
	closed       bool
	nextID       int
	auths        int
	authAttempts int
	hellos       int
}

// Start runs a server on 127.0.0.1:0 until the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Mode < ImplicitTLS || opts.Mode > Plain {
		tb.Fatalf("smtptest: unknown mode %v", opts.Mode)
	}
	if len(opts.Mechanisms) == 0 {
		opts.Mechanisms = []string{sasl.Plain}
	}
	for _, m := range opts.Mechanisms {
		if m != sasl.Plain && m != sasl.Login && m != mechXOAuth2 && m != sasl.OAuthBearer {
			tb.Fatalf("smtptest: unsupported SASL mechanism %q (PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER)", m)
		}
	}
	for _, ext := range opts.Without {
		if ext != "SMTPUTF8" && (ext != "8BITMIME" || opts.Mode == STARTTLS) {
			tb.Fatalf("smtptest: cannot go without %q in mode %v (SMTPUTF8, or 8BITMIME without STARTTLS)", ext, opts.Mode)
		}
	}
	if opts.Domain == "" {
		opts.Domain = "smtptest.local"
	}
	s := &Server{
		opts:    opts,
		log:     &logSink{tb: tb},
		done:    make(chan struct{}),
		serve:   make(chan struct{}),
		users:   copyUsers(opts.Users),
		hooks:   opts.Hooks,
		changed: make(chan struct{}),
		conns:   make(map[*trackedConn]struct{}),
	}
	cert := opts.TLS
	if cert == nil {
		s.CA = NewCA(tb)
		leaf := s.CA.Leaf(tb, LeafOptions{})
		cert = &leaf
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}

	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatalf("smtptest: listen: %v", err)
	}
	s.ln = &listener{tcp: tcp, srv: s, ready: make(chan net.Conn)}

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = opts.Domain
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 50 << 20
	srv.MaxRecipients = 1000
	srv.EnableSMTPUTF8 = !slices.Contains(opts.Without, "SMTPUTF8")
	srv.ErrorLog = s.log
	srv.Debug = helloCounter{s}
	// go-smtp would refuse AUTH without TLS before the session sees it;
	// the session applies Options.AllowInsecureAuth itself so that every
	// attempt is counted (AuthAttempts).
	srv.AllowInsecureAuth = true
	switch opts.Mode {
	case ImplicitTLS:
		s.ln.tls = tlsConfig
	case STARTTLS:
		srv.TLSConfig = tlsConfig
	}
	s.smtp = srv

	s.wg.Add(1)
	go s.ln.loop()
	go func() {
		defer close(s.serve)
		_ = srv.Serve(s.ln)
	}()
	tb.Cleanup(s.Close)
	return s
}

// Addr is the address it listens on, "127.0.0.1:port" by default.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Host is the IP address it listens on, "127.0.0.1" by default.
func (s *Server) Host() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Messages returns the messages received so far, in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// WaitMessages waits until at least n messages have arrived and returns
// them all. It fails the test (FailNow, so call it from the test's
// goroutine) if they have not arrived within timeout.
func (s *Server) WaitMessages(tb testing.TB, n int, timeout time.Duration) []Message {
	tb.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		got, changed := len(s.messages), s.changed
		if got >= n {
			msgs := slices.Clone(s.messages)
			s.mu.Unlock()
			return msgs
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			tb.Fatalf("smtptest: %d of %d messages arrived within %v", got, n, timeout)
			return nil
		}
	}
}

// Connections is the number of TCP connections accepted so far, including
// ones that failed the TLS handshake.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextID
}

// OpenConnections is the number of accepted connections the server has not
// closed yet. The server closes its side when it reads the client's close,
// so poll when waiting for a client to hang up.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Auths is the number of successful AUTH exchanges so far.
func (s *Server) Auths() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auths
}

// AuthAttempts is the number of AUTH commands received after EHLO,
// successful or not, including ones refused because the connection was not
// encrypted.
func (s *Server) AuthAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authAttempts
}

// Hellos is the number of EHLO and HELO commands the server answered on
// every connection so far, including the repeat after STARTTLS: a client
// that says EHLO again in the middle of a session spends a round trip.
func (s *Server) Hellos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hellos
}

// SetUsers replaces the user table, e.g. when a test fixes a password.
func (s *Server) SetUsers(users map[string]string) {
	u := copyUsers(users)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = u
}

// SetHooks replaces the hooks; SetHooks(Hooks{}) makes the server behave
// again. Commands already past a hook are not affected.
func (s *Server) SetHooks(h Hooks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = h
}

// DropConnections closes every open connection abruptly, as a server
// restart would, and keeps accepting new ones.
func (s *Server) DropConnections() {
	for _, c := range s.openConns() {
		c.Close()
	}
}

// Close stops the server, drops every connection and waits for the
// connection goroutines to end. Start registers it with tb.Cleanup; calling
// it earlier is fine and later calls do nothing.
func (s *Server) Close() {
	s.close.Do(func() {
		close(s.done) // ends stalls and makes Accept fail
		s.ln.Close()
		<-s.serve // no new go-smtp connection goroutines after this

		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.DropConnections()

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.smtp.Shutdown(ctx); err != nil {
			s.logf("smtptest: shutdown: %v", err)
		}
		s.wg.Wait()
		s.log.stop()
	})
}

func (s *Server) track(raw net.Conn) (*trackedConn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	tc := &trackedConn{Conn: raw, id: s.nextID, srv: s}
	if s.closed {
		raw.Close()
		return nil, false
	}
	s.conns[tc] = struct{}{}
	return tc, true
}

func (s *Server) untrack(c *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

func (s *Server) openConns() []*trackedConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	return cs
}

func (s *Server) currentHooks() Hooks {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hooks
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// stall waits as long as Hooks.Stall asks at stage, or until Close.
func (s *Server) stall(stage string) {
	h := s.currentHooks()
	if h.Stall == nil {
		return
	}
	d := h.Stall(stage)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.done:
	}
}

func (s *Server) logf(format string, args ...any) { s.log.Printf(format, args...) }

func copyUsers(users map[string]string) map[string]string {
	u := make(map[string]string, len(users))
	for k, v := range users {
		u[k] = v
	}
	return u
}

// helloCounter counts greetings in go-smtp's debug copy of the traffic
// (Server.Debug), which every connection writes to, before and after
// STARTTLS. The server writes each reply whole, in one write, and its
// replies to EHLO and HELO are the only ones that begin "Hello"; what the
// client sends is copied here too, but no test sends a reply's text.
type helloCounter struct{ srv *Server }

var (
	ehloReply = []byte("250-Hello ")       // go-smtp's EHLO reply lists extensions after it
	heloReply = []byte("250 2.0.0 Hello ") // HELO's is one line
)

func (h helloCounter) Write(p []byte) (int, error) {
	if n := bytes.Count(p, ehloReply) + bytes.Count(p, heloReply); n > 0 {
		h.srv.mu.Lock()
		h.srv.hellos += n
		h.srv.mu.Unlock()
	}
	return len(p), nil
}

// logSink sends go-smtp's and the server's diagnostics to the test log
// (shown with -v or on failure) until the server is closed, after which
// logging to tb would panic.
type logSink struct {
	mu      sync.Mutex
	tb      testing.TB
	stopped bool
}

func (l *logSink) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.tb.Logf(format, args...)
	}
}

func (l *logSink) Println(args ...any) {
	l.Printf("%s", fmt.Sprintln(args...))
}

func (l *logSink) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
