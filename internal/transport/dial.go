package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/egress"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// Dialer opens authenticated SMTP sessions.
type Dialer struct {
	// Resolver answers host lookups; nil uses the system resolver. Tests
	// point names at loopback with it.
	Resolver egress.Resolver
	// AllowPrivate lifts the egress guard for untrusted servers
	// (OUTBOUND_ALLOW_PRIVATE_NETWORKS).
	AllowPrivate bool
	// RootCAs verifies server certificates; nil uses the system roots.
	// Verification is never turned off.
	RootCAs  *x509.CertPool
	HeloName string

	ConnectTimeout time.Duration // dial, TLS, greeting, EHLO and AUTH together
	CommandTimeout time.Duration // each later command's reply
	DataTimeout    time.Duration // writing the message and the reply after the final dot
	// NoPipelining sends one command at a time even where the server
	// offers PIPELINING (see pipeline).
	NoPipelining bool
}

func (d *Dialer) guard(srv Server) *egress.Guard {
	return &egress.Guard{
		// The operator's relay is trusted to be wherever the operator put it.
		AllowPrivate: d.AllowPrivate || srv.Trusted,
		Resolver:     d.Resolver,
		Dialer:       &net.Dialer{KeepAlive: 30 * time.Second},
	}
}

func (d *Dialer) tlsConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: d.RootCAs, MinVersion: tls.VersionTLS12}
}

// Dial connects to srv, secures the connection, and logs in. Every failure
// is an *Error with a hint.
func (d *Dialer) Dial(ctx context.Context, srv Server) (*Conn, error) {
	c, err := d.dial(ctx, srv)
	if err != nil {
		var e *Error
		errors.As(err, &e)
		return nil, withHint(e, srv)
	}
	return c, nil
}

func (d *Dialer) dial(ctx context.Context, srv Server) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.ConnectTimeout)
	defer cancel()

	raw, err := d.guard(srv).DialContext(ctx, "tcp", srv.Addr())
	if err != nil {
		return nil, classify(StageConnect, err)
	}
	tracked := &trackedConn{Conn: raw}
	// go-smtp sets its own per-command deadlines, so a cancelled context
	// is enforced by closing the socket under it.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	fail := func(stage Stage, err error) (*Conn, error) {
		raw.Close()
		return nil, openingError(ctx, stage, err)
	}

	// The TLS connection is held here in both modes, for the login's check
	// that the session is encrypted; go-smtp and, for pipelining, this
	// package speak over session, which is made on it (see pipeline).
	var tc *tls.Conn
	var session net.Conn
	switch srv.Security {
	case tenant.SecurityTLS:
		tc = tls.Client(tracked, d.tlsConfig(srv.Host))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(StageTLS, err)
		}
		session = tc
	case tenant.SecurityStartTLS:
		var e *Error
		if tc, e = d.startTLS(ctx, tracked, srv.Host); e != nil {
			raw.Close()
			return nil, e
		}
		session = &resumedConn{Conn: tc, greeting: strings.NewReader(resumedGreeting)}
	default:
		raw.Close()
		return nil, &Error{Code: CodeProtocol, Stage: StageConnect, Message: "unknown security mode " + string(srv.Security)}
	}
	// Every reply from here on is read through one limiter, whichever
	// reader reads it.
	session = limitReplies(session)
	client := smtp.NewClient(session)
	client.CommandTimeout = time.Until(deadline(ctx))
	client.SubmissionTimeout = d.DataTimeout
	if err := client.Hello(d.HeloName); err != nil {
		return fail(StageGreet, err)
	}
	auth := &authChooser{client: client, tls: tc, srv: srv}
	if err := client.Auth(auth); err != nil {
		if !auth.started {
			// The greeting, EHLO or (STARTTLS) the handshake failed.
			return fail(StageGreet, err)
		}
		// Scrubbed before classify clips the text, so that no part of a
		// secret cut at the clip survives.
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			se.Message = scrub(se.Message, srv)
		}
		e := classify(StageAuth, err)
		if e.Code == CodeRejected || e.Code == CodeProtocol {
			e.Code = CodeAuthFailed
		}
		e.Message = scrub(e.Message, srv)
		raw.Close()
		return nil, e
	}
	state := tc.ConnectionState()
	client.CommandTimeout = d.CommandTimeout
	// Read and written only while go-smtp is not waiting for a reply (see
	// pipeline and Conn.reset).
	text := textproto.NewConn(session)
	c := &Conn{
		client:     client,
		raw:        tracked,
		session:    session,
		text:       text,
		cmdTime:    d.CommandTimeout,
		server:     srv,
		dataTime:   d.DataTimeout,
		TLSVersion: tls.VersionName(state.Version),
		Mechanism:  auth.mech,
	}
	if ok, _ := client.Extension("PIPELINING"); ok && !d.NoPipelining {
		c.pipe = newPipeline(session, text, client.Extension, d.CommandTimeout)
	}
	return c, nil
}

// openingError classifies a failure while the session is being opened.
// When the dial's time ran out, the socket was closed under the step that
// failed, so the context says more than the step's own error; a reply the
// server gave still says the most.
func openingError(ctx context.Context, stage Stage, err error) *Error {
	if ctx.Err() != nil && !errors.As(err, new(*smtp.SMTPError)) {
		err = ctx.Err()
	}
	return classify(stage, err)
}

// authChooser is a sasl.Client that picks the mechanism once the server's
// EHLO is known (go-smtp says EHLO inside Auth, just before Start): the
// profile's mechanism, falling back from PLAIN to LOGIN only when the
// server offers LOGIN and not PLAIN. It also refuses to start on a
// connection that is not encrypted, so no password is ever sent in clear.
type authChooser struct {
	client  *smtp.Client
	tls     *tls.Conn
	srv     Server
	chosen  sasl.Client
	mech    string
	started bool
}

var errNoAuth = errors.New("server offers no AUTH on this connection")

func (a *authChooser) Start() (string, []byte, error) {
	a.started = true
	if a.tls == nil || !a.tls.ConnectionState().HandshakeComplete {
		return "", nil, &Error{Code: CodeTLSFailed, Stage: StageTLS, Message: "connection is not encrypted; refusing to log in"}
	}
	ok, mechs := a.client.Extension("AUTH")
	if !ok {
		return "", nil, errNoAuth
	}
	offered := strings.Fields(strings.ToUpper(mechs))
	switch {
	case a.srv.Auth == tenant.AuthXOAuth2 && !contains(offered, "XOAUTH2") && contains(offered, sasl.OAuthBearer):
		a.mech = sasl.OAuthBearer // RFC 7628, where XOAUTH2 is not offered
		a.chosen = sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: a.srv.Username,
			Token: a.srv.Token.Reveal(), Host: a.srv.Host, Port: a.srv.Port})
	case a.srv.Auth == tenant.AuthXOAuth2:
		a.mech = "XOAUTH2"
		a.chosen = &xoauth2Client{username: a.srv.Username, token: a.srv.Token.Reveal()}
	case a.srv.Auth == tenant.AuthLogin || !contains(offered, "PLAIN") && contains(offered, "LOGIN"):
		a.mech = "LOGIN"
		a.chosen = sasl.NewLoginClient(a.srv.Username, a.srv.Password.Reveal())
	default:
		a.mech = "PLAIN"
		a.chosen = sasl.NewPlainClient("", a.srv.Username, a.srv.Password.Reveal())
	}
	return a.chosen.Start()
}

func (a *authChooser) Next(challenge []byte) ([]byte, error) { return a.chosen.Next(challenge) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// xoauth2Client is the client side of XOAUTH2, the bearer-token login of
// Google and Microsoft: "user=<name>\x01auth=Bearer <token>\x01\x01". A
// refused token comes back as a 334 challenge with a JSON error, answered
// with an empty line, after which the server replies 535.
type xoauth2Client struct {
	username, token string
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + c.username + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

func (c *xoauth2Client) Next([]byte) ([]byte, error) { return []byte{}, nil }

// scrub removes the password from a server's reply, should a server echo
// it: replies end up in API responses and logs.
func scrub(msg string, srv Server) string {
	for _, s := range []string{srv.Password.Reveal(), srv.Token.Reveal()} {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Minute)
	}
	return d
}

// trackedConn remembers whether any write failed, which tells a lost
// connection before the final dot (the message surely was not taken) from
// one lost after it (the server may have taken it).
type trackedConn struct {
	net.Conn
	writeFailed bool
	writes      int // how many writes reached the network, for tests of pipelining
}

func (t *trackedConn) Write(b []byte) (int, error) {
	t.writes++
	n, err := t.Conn.Write(b)
	if err != nil {
		t.writeFailed = true
	}
	return n, err
}

// Verified describes a successful test connection.
type Verified struct {
	TLSVersion string
	Mechanism  string
	Latency    time.Duration
}

// Verify connects, secures, logs in and quits; no mail is sent. It is the
// "test connection" button of a settings page.
func (d *Dialer) Verify(ctx context.Context, srv Server) (Verified, error) {
	start := time.Now()
	c, err := d.Dial(ctx, srv)
	if err != nil {
		return Verified{}, err
	}
	v := Verified{TLSVersion: c.TLSVersion, Mechanism: c.Mechanism, Latency: time.Since(start)}
	_ = c.Quit()
	return v, nil
}
