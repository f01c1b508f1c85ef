package submission

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/delivery"
)

// backend makes a session per EHLO; go-smtp makes a new one after STARTTLS.
type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	tc := unwrap(c.Conn())
	if tc == nil {
		return nil, errors.New("submission: connection not from a submission listener")
	}
	_, isTLS := c.TLSConnectionState()
	return &session{s: b.s, smtp: c, conn: tc, tls: isTLS}, nil
}

// session is one client's state between EHLO and the end of the
// connection (or STARTTLS). A login holds for the session; the envelope
// for one transaction.
type session struct {
	s    *Server
	smtp *smtp.Conn
	conn *trackedConn
	tls  bool

	tenant     string // set by a successful login
	recipients []string
}

// AuthMechanisms advertises AUTH only inside TLS.
func (se *session) AuthMechanisms() []string {
	if !se.tls {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth starts a login, refused outside TLS whatever was sent with it.
func (se *session) Auth(mech string) (sasl.Server, error) {
	if !se.tls {
		return nil, errEncryptionRequired
	}
	switch mech {
	case sasl.Plain:
		return plainServer(se.login), nil
	case sasl.Login:
		return &loginServer{check: se.login}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (se *session) login(username, password string) error {
	result := authenticate(se.s.deps.Keys, username, password)
	addr := se.remote()
	ip, _, _ := net.SplitHostPort(addr)
	if result != loginOK {
		se.s.deps.Metrics.SubmissionLogin(result)
		attrs := []any{"remote_addr", addr, "result", result}
		if result != loginInvalidUsername {
			attrs = append(attrs, "tenant_id", username)
		}
		se.s.log.Warn("submission login refused", attrs...)
		se.s.sleep(se.s.logins.failed(ip))
		return smtp.ErrAuthFailed
	}
	se.s.logins.succeeded(ip)
	if !se.conn.claimTenant(username) {
		se.s.deps.Metrics.SubmissionLogin(loginTenantBusy)
		se.s.log.Warn("submission login refused", "remote_addr", addr, "result", loginTenantBusy, "tenant_id", username,
			"tenant_connections", se.s.cfg.MaxTenantConnections)
		return errTenantBusy
	}
	se.s.deps.Metrics.SubmissionLogin(result)
	se.tenant = username
	return nil
}

func (se *session) remote() string { return se.conn.RemoteAddr().String() }

// Mail starts a transaction: only after a login, and not while shutting
// down. The reverse path is not kept: where bounces go is the route's
// business, not the client's.
func (se *session) Mail(string, *smtp.MailOptions) error {
	if se.s.draining.Load() {
		return errShuttingDown
	}
	if se.tenant == "" {
		return errAuthRequired
	}
	se.conn.inTx.Store(true)
	return nil
}

// Rcpt adds a recipient. go-smtp refuses those over MaxRecipients itself
// (452 4.5.3, RFC 5321 section 4.5.3.1.10); the check here keeps the
// bound should it stop doing so.
func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if se.tenant == "" {
		return errAuthRequired
	}
	if len(se.recipients) >= se.s.cfg.MaxRecipients {
		return reply(452, smtp.EnhancedCode{4, 5, 3}, "Too many recipients")
	}
	se.recipients = append(se.recipients, to)
	return nil
}

// Data reads the message and hands it to the Acceptor; the error returned
// is the reply go-smtp writes, a 250 included (see accepted).
func (se *session) Data(r io.Reader) error {
	// go-smtp's read deadline is the command timeout from the DATA line;
	// the message itself may take longer.
	se.smtp.Conn().SetReadDeadline(time.Now().Add(se.s.cfg.DataTimeout))
	raw, err := io.ReadAll(r)
	switch {
	case errors.Is(err, smtp.ErrDataTooLarge):
		return se.refused(tooLarge, len(raw), nil)
	case errors.Is(err, smtp.ErrTooLongLine):
		return se.refused(lineTooLong(se.s.cfg.MaxLineLength), len(raw), nil)
	case err != nil:
		// The connection broke or timed out: nothing was accepted, and
		// the client, which had no 250, still holds the message.
		se.s.log.Info("submission message not received", "remote_addr", se.remote(), "tenant_id", se.tenant, "error", err)
		return errReadFailed
	}
	if headerEnd(raw) > se.s.cfg.MaxHeaderBytes {
		return se.refused(headerTooLarge(se.s.cfg.MaxHeaderBytes), len(raw), nil)
	}
	raw = crlf(raw)

	ctx, cancel := context.WithTimeout(se.s.base, acceptTimeout)
	defer cancel()
	acc, err := se.s.deps.Acceptor.AcceptSubmission(ctx, delivery.Submission{TenantID: se.tenant, Recipients: slices.Clone(se.recipients), Raw: raw})
	if err != nil {
		return se.refused(refuse(err), len(raw), err)
	}
	result := "accepted"
	if acc.Replayed {
		result = "replayed"
	}
	se.s.deps.Metrics.SubmissionMessage(result, se.tenant)
	se.conn.count(true)
	se.s.log.Info("submission message", "tenant_id", se.tenant, "message_id", acc.ID, "remote_addr", se.remote(),
		"result", result, "smtp_code", 250, "recipients", len(se.recipients), "bytes", len(raw))
	return accepted(acc.ID)
}

// refused counts and logs a refusal and returns its reply.
func (se *session) refused(ref refusal, size int, err error) error {
	se.s.deps.Metrics.SubmissionMessage(ref.result, se.tenant)
	se.conn.count(false)
	level := slog.LevelInfo
	if ref.result == errUnknown.result {
		level = slog.LevelError
	}
	attrs := []any{"tenant_id", se.tenant, "remote_addr", se.remote(), "result", ref.result,
		"smtp_code", ref.reply.Code, "recipients", len(se.recipients), "bytes", size}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	se.s.log.Log(context.Background(), level, "submission message refused", attrs...)
	return ref.reply
}

// Reset ends the transaction (after DATA, on RSET or a new EHLO).
func (se *session) Reset() {
	se.recipients = nil
	se.conn.inTx.Store(false)
}

// Logout ends the session.
func (se *session) Logout() error {
	se.Reset()
	return nil
}

// headerEnd is the length of the header section: the bytes before the
// first empty line, or all of raw when there is none.
func headerEnd(raw []byte) int {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			break
		}
		if line := raw[i : i+j]; len(line) == 0 || string(line) == "\r" {
			return i
		}
		i += j + 1
	}
	return len(raw)
}

// crlf ends every line with CRLF: a bare LF (which some mailers send)
// becomes CRLF, so what is queued is what RFC 5322 section 2.3 says a
// message is. raw is returned as it is when it has no bare LF.
func crlf(raw []byte) []byte {
	bare := 0
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			bare++
		}
	}
	if bare == 0 {
		return raw
	}
	out := make([]byte, 0, len(raw)+bare)
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// sleep waits d, or less when a shutdown runs out of grace.
func (s *Server) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.base.Done():
	}
}

// logSession writes the one line per connection.
func (s *Server) logSession(c *trackedConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.log.Info("submission session", "remote_addr", c.RemoteAddr().String(), "listener", c.listener,
		"tenant_id", c.tenant, "messages", c.messages, "refused", c.refused,
		"duration_ms", time.Since(c.opened).Milliseconds())
}
