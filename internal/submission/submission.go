// Package submission is Outbound's SMTP submission door (RFC 6409): an
// application that already sends mail over SMTP points its mailer at
// Outbound instead of at a mail server, logs in with its tenant id and a
// send token, and its messages enter the same queue as those posted to
// the HTTP API. The package speaks SMTP and only SMTP: what a message may
// be, and whether the tenant may send it now, is the Acceptor's to decide;
// this package turns the answer into an SMTP reply.
package submission

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/delivery"
	"github.com/outbound-mail/outbound/internal/metrics"
)

// Acceptor queues a submitted message, or says why not; the delivery
// service is one. Its errors are the delivery service's (see refusals.go
// for the replies they become).
type Acceptor interface {
	AcceptSubmission(ctx context.Context, m delivery.Submission) (delivery.Accepted, error)
}

// Keys finds the API key a token belongs to; apikey.Set is one.
type Keys interface {
	Lookup(token string) (apikey.Key, bool)
}

// Config bounds the server. Zero fields take the defaults New fills in.
type Config struct {
	// Hostname is the name in the greeting and the EHLO reply.
	Hostname string
	// CertFile and KeyFile hold the PEM certificate chain and key. They
	// are read again when their modification time changes, so a renewed
	// certificate needs no restart.
	CertFile, KeyFile string
	// CertCheckInterval is how often, at most, the files' times are
	// looked at (default 5s).
	CertCheckInterval time.Duration

	MaxConnections int // open connections over all listeners (default 100)
	// MaxTenantConnections is how many of them may be logged in as one
	// tenant (default a quarter of MaxConnections, at least 1), so that
	// one tenant's mailer opening connections without end cannot take
	// every other tenant's.
	MaxTenantConnections int
	MaxRecipients        int   // RCPT TO per message (default 100)
	MaxMessageBytes      int64 // advertised as SIZE (default 25 MiB)
	MaxHeaderBytes       int   // the header section (default 256 KiB)
	MaxLineLength        int   // any line, commands and message (default 4000)
	// CommandTimeout bounds the wait for each command (and each reply
	// write); DataTimeout the whole message after DATA. RFC 5321 section
	// 4.5.3.2 asks servers to wait 5 and 10 minutes (the defaults).
	CommandTimeout time.Duration
	DataTimeout    time.Duration
	// LoginTimeout is how long a connection may stay without a login
	// (default 60s): past it, it is closed, so that clients that never
	// authenticate cannot sit on the connection cap.
	LoginTimeout time.Duration
	// LoginDelay is the pause before answering a failed login, doubled
	// for each further failure from the same client address within
	// LoginMemory, up to MaxLoginDelay (defaults 250ms, 8s, 15m).
	LoginDelay, MaxLoginDelay, LoginMemory time.Duration
}

func (c *Config) fillDefaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 100
	}
	if c.MaxTenantConnections <= 0 {
		c.MaxTenantConnections = max(1, c.MaxConnections/4)
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = 100
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 25 << 20
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 256 << 10
	}
	if c.MaxLineLength <= 0 {
		c.MaxLineLength = 4000
	}
	set(&c.CertCheckInterval, 5*time.Second)
	set(&c.CommandTimeout, 5*time.Minute)
	set(&c.DataTimeout, 10*time.Minute)
	set(&c.LoginTimeout, time.Minute)
	set(&c.LoginDelay, 250*time.Millisecond)
	set(&c.MaxLoginDelay, 8*time.Second)
	set(&c.LoginMemory, 15*time.Minute)
}

// Deps are what the sessions work with.
type Deps struct {
	Log      *slog.Logger
	Keys     Keys
	Acceptor Acceptor
	Metrics  *metrics.Metrics // nil: none kept
}

// Listener names, used in logs and as metric labels.
const (
	listenerStartTLS = "submission"  // port 587, STARTTLS (RFC 6409)
	listenerTLS      = "submissions" // port 465, implicit TLS (RFC 8314)
)

// acceptTimeout bounds one call of the Acceptor; clients wait up to ten
// minutes for the reply to the final dot (RFC 5321 section 4.5.3.2).
const acceptTimeout = 30 * time.Second

// ErrShutdown is what Ping reports once Shutdown has begun.
var ErrShutdown = errors.New("submission: shutting down")

// Server is the submission service over any number of listeners.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	smtp   *smtp.Server
	certs  *certReloader
	conns  *connTracker
	logins *throttle
	base   context.Context // ends when a shutdown runs out of grace
	cancel context.CancelFunc

	mu        sync.Mutex // orders Serve against Shutdown
	listeners []net.Listener
	serving   sync.WaitGroup
	draining  atomic.Bool
	failed    atomic.Pointer[error] // a listener stopped serving on its own
}

// New builds the server and loads the certificate; it listens nowhere
// until Serve or ServeTLS.
func New(cfg Config, d Deps) (*Server, error) {
	cfg.fillDefaults()
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Keys == nil || d.Acceptor == nil {
		return nil, errors.New("submission: Keys and Acceptor are required")
	}
	certs, err := newCertReloader(cfg.CertFile, cfg.KeyFile, cfg.CertCheckInterval, d.Log)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: d, log: d.Log, certs: certs,
		logins: newThrottle(cfg.LoginDelay, cfg.MaxLoginDelay, cfg.LoginMemory)}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.conns = newConnTracker(cfg.MaxConnections, cfg.MaxTenantConnections, cfg.LoginTimeout, d.Metrics, s.logSession)

	srv := smtp.NewServer(backend{s})
	srv.Domain = cfg.Hostname
	srv.TLSConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	srv.MaxRecipients = cfg.MaxRecipients
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxLineLength = cfg.MaxLineLength
	srv.ReadTimeout = cfg.CommandTimeout
	srv.WriteTimeout = cfg.CommandTimeout
	srv.EnableSMTPUTF8 = true
	// AUTH is refused before TLS by the session itself, with RFC 4954's
	// 538 5.7.11 (go-smtp's own refusal is a non-standard 523), and not
	// advertised there either (see session.AuthMechanisms).
	srv.AllowInsecureAuth = true
	srv.ErrorLog = slog.NewLogLogger(d.Log.Handler(), slog.LevelWarn)
	s.smtp = srv
	return s, nil
}

// Serve answers SMTP on ln, offering STARTTLS (port 587). It returns nil
// after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(s.conns.listener(ln, listenerStartTLS, nil))
}

// ServeTLS answers SMTP on ln inside TLS from the first byte (port 465,
// RFC 8314). It returns nil after Shutdown.
func (s *Server) ServeTLS(ln net.Listener) error {
	return s.serve(s.conns.listener(ln, listenerTLS, s.smtp.TLSConfig))
}

func (s *Server) serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	// Shutdown closes the listeners itself: go-smtp only closes those
	// its Serve has already registered, and a Serve that began just
	// before Shutdown would otherwise accept on forever.
	s.listeners = append(s.listeners, ln)
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()
	err := s.smtp.Serve(ln)
	if err != nil && !s.draining.Load() {
		err = fmt.Errorf("submission: serve %s: %w", ln.Addr(), err)
		s.failed.CompareAndSwap(nil, &err)
		return err
	}
	return nil
}

// Ping is the server's readiness: nil while every listener serves.
func (s *Server) Ping(context.Context) error {
	if s.draining.Load() {
		return ErrShutdown
	}
	if err := s.failed.Load(); err != nil {
		return *err
	}
	return nil
}

// Open is the number of connections open now.
func (s *Server) Open() int { return s.conns.open() }

// Shutdown stops accepting connections, closes idle ones (the client
// reads 421) and waits for transactions in progress to end, each
// connection closing after its reply. When ctx ends first, the
// connections still open are cut, the Acceptor calls still running are
// cancelled (a cut message was never answered 250, so the client still
// holds it), and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	for _, ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.smtp.Shutdown(context.Background()) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		// go-smtp waits for every connection to end, idle ones too: end
		// those between transactions by expiring their read, so go-smtp
		// answers 421 itself. Repeated, because each command read sets
		// a new deadline.
		s.conns.closeIdle()
		select {
		case err := <-done:
			s.serving.Wait()
			s.cancel()
			if err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("submission: shutdown: %w", err)
			}
			return nil
		case <-tick.C:
		case <-ctx.Done():
			s.cancel()
			// go-smtp's Close does nothing once Shutdown began: cut the
			// connections here.
			s.conns.closeAll()
			<-done
			return fmt.Errorf("submission: shutdown: %w", ctx.Err())
		}
	}
}
