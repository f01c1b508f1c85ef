// Package smtptest runs a real SMTP server (go-smtp) in-process for tests:
// implicit TLS or STARTTLS with a certificate from a throwaway CA, AUTH
// PLAIN against a user table, a record of every message exactly as
// received, connection counts, and hooks that make it misbehave.
package smtptest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mode is how the server encrypts.
type Mode int

const (
	// ImplicitTLS encrypts from the first byte (port 465 style).
	ImplicitTLS Mode = iota
	// STARTTLS offers STARTTLS on a plain listener (port 587 style).
	STARTTLS
	// STARTTLSNotOffered is a plain listener that never offers STARTTLS,
	// to prove a client refuses to log in on it.
	STARTTLSNotOffered
)

// Message is one message as the server received it.
type Message struct {
	From     string
	To       []string
	Data     []byte // the DATA exactly as received, dot-unstuffed
	Username string // who logged in on the session
	ConnID   int    // which TCP connection carried it (1, 2, ...)
	At       time.Time
}

// Hooks make the server misbehave. Each may be nil; a non-nil
// *smtp.SMTPError from one is the server's reply.
type Hooks struct {
	Auth func(username string) *smtp.SMTPError
	Mail func(from string) *smtp.SMTPError
	Rcpt func(to string) *smtp.SMTPError
	// Data runs after the whole message was read, before the reply.
	Data func(msg Message) *smtp.SMTPError
	// DropMidData closes the connection after reading part of the
	// message: the message is not recorded.
	DropMidData func() bool
	// DropAfterData closes the connection after reading the whole message,
	// without replying: the message IS recorded (the server has it), but
	// the client cannot know.
	DropAfterData func(msg Message) bool
	// Stall delays the reply at a stage: "mail", "rcpt" or "data".
	Stall func(stage string) time.Duration
}

// Options configure Start.
type Options struct {
	Users         map[string]string // username → password for AUTH PLAIN
	AcceptAnyAuth bool
	NoAuth        bool             // accept MAIL without AUTH
	TLS           *tls.Certificate // default: a leaf from a new CA (Server.CA)
	Mode          Mode
	Hooks         Hooks
	Domain        string
}

// Server is a running test server.
type Server struct {
	CA *CA // the CA that issued the default certificate; nil when Options.TLS was given

	opts     Options
	srv      *smtp.Server
	listener net.Listener
	port     int

	mu           sync.Mutex
	users        map[string]string
	hooks        Hooks
	messages     []Message
	conns        map[int]net.Conn
	notify       chan struct{}
	connCount    atomic.Int64
	authCount    atomic.Int64
	authAttempts atomic.Int64
}

// Start listens on 127.0.0.1 on a free port until the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := &Server{opts: opts, users: map[string]string{}, hooks: opts.Hooks, conns: map[int]net.Conn{},
		notify: make(chan struct{}, 1)}
	for u, p := range opts.Users {
		s.users[u] = p
	}
	cert := opts.TLS
	if cert == nil {
		s.CA = NewCA(tb)
		c := s.CA.Leaf(tb, LeafOptions{})
		cert = &c
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{*cert}}

	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = opts.Domain
	if s.srv.Domain == "" {
		s.srv.Domain = "smtptest.local"
	}
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.MaxMessageBytes = 50 << 20
	s.srv.MaxRecipients = 1000
	s.srv.ErrorLog = quietLog{}

	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtptest: listen: %v", err)
	}
	s.port = raw.Addr().(*net.TCPAddr).Port
	var l net.Listener = &countingListener{Listener: raw, s: s}
	switch opts.Mode {
	case ImplicitTLS:
		l = tls.NewListener(l, tlsConfig)
	case STARTTLS:
		s.srv.TLSConfig = tlsConfig
	case STARTTLSNotOffered:
	}
	s.listener = l
	go s.srv.Serve(l)
	tb.Cleanup(s.Close)
	return s
}

// Addr is "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Host is the listening address.
func (s *Server) Host() string { return "127.0.0.1" }

// Port is the listening port.
func (s *Server) Port() int { return s.port }

// Close stops the server and drops its connections.
func (s *Server) Close() { s.srv.Close() }

// Messages returns what the server has received so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitMessages waits until at least n messages arrived and returns them.
func (s *Server) WaitMessages(tb testing.TB, n int, timeout time.Duration) []Message {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if msgs := s.Messages(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-s.notify:
		case <-deadline.C:
			tb.Fatalf("smtptest: %d message(s) after %v, want %d", len(s.Messages()), timeout, n)
		}
	}
}

// Connections counts the TCP connections accepted so far.
func (s *Server) Connections() int { return int(s.connCount.Load()) }

// Auths counts successful logins.
func (s *Server) Auths() int { return int(s.authCount.Load()) }

// AuthAttempts counts AUTH commands, successful or not, including any seen
// in clear text before TLS.
func (s *Server) AuthAttempts() int { return int(s.authAttempts.Load()) }

// SetUsers replaces the user table (an operator fixing a password).
func (s *Server) SetUsers(users map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = map[string]string{}
	for u, p := range users {
		s.users[u] = p
	}
}

// SetHooks replaces the fault hooks.
func (s *Server) SetHooks(h Hooks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = h
}

func (s *Server) currentHooks() Hooks {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hooks
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// countingListener numbers connections and watches the clear-text part
// of each for AUTH.
type countingListener struct {
	net.Listener
	s *Server
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	id := int(l.s.connCount.Add(1))
	w := &watchedConn{Conn: c, s: l.s, id: id, plain: l.s.opts.Mode != ImplicitTLS}
	l.s.mu.Lock()
	l.s.conns[id] = w
	l.s.mu.Unlock()
	return w, nil
}

type watchedConn struct {
	net.Conn
	s     *Server
	id    int
	plain bool // bytes read are clear text until STARTTLS
}

func (w *watchedConn) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	if w.plain && n > 0 {
		line := bytes.ToUpper(b[:n])
		if bytes.HasPrefix(line, []byte("AUTH ")) {
			w.s.authAttempts.Add(1)
		}
		if bytes.HasPrefix(line, []byte("STARTTLS")) {
			w.plain = false
		}
	}
	return n, err
}

// session is one SMTP session.
type session struct {
	s        *Server
	conn     *smtp.Conn
	connID   int
	username string
	from     string
	to       []string
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	id := 0
	var nc net.Conn = c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if w, ok := nc.(*watchedConn); ok {
		id = w.id
	}
	return &session{s: s, conn: c, connID: id}, nil
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if _, ok := ss.conn.Conn().(*tls.Conn); ok {
		ss.s.authAttempts.Add(1) // clear-text AUTH is counted by watchedConn
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if h := ss.s.currentHooks().Auth; h != nil {
			if err := h(username); err != nil {
				return err
			}
		}
		ss.s.mu.Lock()
		want, ok := ss.s.users[username]
		ss.s.mu.Unlock()
		if !ss.s.opts.AcceptAnyAuth && (!ok || want != password) {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
				Message: "Username and Password not accepted"}
		}
		ss.username = username
		ss.s.authCount.Add(1)
		return nil
	}), nil
}

func (ss *session) stall(stage string) {
	if h := ss.s.currentHooks().Stall; h != nil {
		time.Sleep(h(stage))
	}
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.username == "" && !ss.s.opts.NoAuth {
		// Gmail's wording; go-smtp's own ErrAuthRequired is a 502.
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication Required"}
	}
	ss.stall("mail")
	if h := ss.s.currentHooks().Mail; h != nil {
		if err := h(from); err != nil {
			return err
		}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.stall("rcpt")
	if h := ss.s.currentHooks().Rcpt; h != nil {
		if err := h(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	hooks := ss.s.currentHooks()
	if hooks.DropMidData != nil && hooks.DropMidData() {
		io.CopyN(io.Discard, r, 16)
		ss.conn.Conn().Close()
		return errors.New("smtptest: dropped mid-DATA")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg := Message{From: ss.from, To: append([]string(nil), ss.to...), Data: data, Username: ss.username,
		ConnID: ss.connID, At: time.Now()}
	ss.stall("data")
	if hooks.DropAfterData != nil && hooks.DropAfterData(msg) {
		ss.s.record(msg)
		ss.conn.Conn().Close()
		return errors.New("smtptest: dropped after DATA")
	}
	if hooks.Data != nil {
		if err := hooks.Data(msg); err != nil {
			return err
		}
	}
	ss.s.record(msg)
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error { return nil }

// quietLog keeps go-smtp's own error log (dropped connections, mostly) out
// of test output.
type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}

// DropConnections closes every open connection from the server's side, as
// a server does to clients idle too long.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := s.conns
	s.conns = map[int]net.Conn{}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}
