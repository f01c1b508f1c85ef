package transport

import (
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"time"

	"github.com/emersion/go-smtp"
)

// Conn is an authenticated SMTP session that can carry many messages, one
// at a time.
type Conn struct {
	client   *smtp.Client
	pipe     *pipeline // set when transactions are pipelined, see pipeline
	raw      *trackedConn
	session  net.Conn        // the connection go-smtp speaks on, TLS and reply limit included
	text     *textproto.Conn // this package's reader and writer on session (see pipeline)
	cmdTime  time.Duration   // for each command's reply
	server   Server
	dataTime time.Duration
	broken   bool // a reset failed: the session state is unknown

	TLSVersion string // e.g. "TLS 1.3"
	Mechanism  string // "PLAIN", "LOGIN", "XOAUTH2" or "OAUTHBEARER"
}

// Server is the account this session is logged in to.
func (c *Conn) Server() Server { return c.server }

// Rejection is one recipient the server refused, with its reply.
type Rejection struct {
	Email        string `json:"email"`
	SMTPCode     int    `json:"smtp_code"`
	EnhancedCode string `json:"enhanced_code,omitempty"`
	Message      string `json:"message"`
}

// Result is a transaction the server accepted for at least one recipient.
type Result struct {
	Reply    string      // the server's reply to the final dot (often a queue id)
	Rejected []Rejection // recipients refused with a 5xx
	Deferred []Rejection // recipients refused for now (4xx): not sent to, to be tried again
}

// Send runs one mail transaction: MAIL FROM, RCPT TO for each recipient,
// DATA, pipelined where the session allows it. The message goes to the
// recipients the server accepts; those it refuses, for good (5xx) or for
// now (4xx), are listed in the result and hold back none of the others,
// as a relaying MTA treats them (RFC 5321 section 3.3). When no recipient
// is accepted, or on any other failure, the error is an *Error and the
// result still lists the refusals; after the final dot, a lost connection
// is ambiguous for the accepted recipients only. After an error the
// session is either reset and reusable (Reusable reports which) or must
// be closed.
func (c *Conn) Send(from string, rcpts []string, msg []byte) (Result, error) {
	return c.SendContent(from, rcpts, msg, Content{})
}

// Content is what a message asks of the server beyond 7-bit ASCII. A
// message composed here asks nothing (Compose writes 7-bit MIME); one
// written by a client and sent as is may.
type Content struct {
	// EightBit: the body holds octets above 127, which only a server
	// offering 8BITMIME takes (RFC 6152); MAIL says BODY=8BITMIME.
	EightBit bool
	// UTF8: the header holds UTF-8 (RFC 6532), which only a server
	// offering SMTPUTF8 takes (RFC 6531); MAIL says SMTPUTF8. Addresses
	// that are not ASCII ask for it too, whatever this says.
	UTF8 bool
}

// SendContent is Send for a message that asks ct of the server. A server
// that lacks what it asks gets nothing: the error is a permanent
// protocol_error, before MAIL, rather than a message altered to fit
// (converting the body would break a signature over it, and the server's
// extensions do not change between retries).
func (c *Conn) SendContent(from string, rcpts []string, msg []byte, ct Content) (Result, error) {
	ct.UTF8 = ct.UTF8 || !isASCII(from) || !allASCII(rcpts)
	if err := c.lacks(ct); err != nil {
		return Result{}, err
	}
	if c.pipe != nil {
		return c.sendPipelined(from, rcpts, msg, ct.UTF8)
	}
	opts := &smtp.MailOptions{Size: int64(len(msg)), UTF8: ct.UTF8}
	if err := c.client.Mail(from, opts); err != nil {
		return Result{}, c.fail(StageMail, err)
	}
	var res Result
	var refusal *smtp.SMTPError
	for _, rcpt := range rcpts {
		err := c.client.Rcpt(rcpt, nil)
		if err == nil {
			continue
		}
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code == 421 {
			// The connection failed, or the server is closing it.
			return res, c.fail(StageRcpt, err)
		}
		res.refused(rcpt, se)
		refusal = weightier(refusal, se)
	}
	if res.noneAccepted(len(rcpts)) {
		return res, c.fail(StageRcpt, refusal)
	}

	w, err := c.client.Data()
	if err != nil {
		return res, c.fail(StageData, err)
	}
	// go-smtp puts no deadline on the body itself.
	_ = c.raw.SetWriteDeadline(time.Now().Add(c.dataTime))
	_, werr := w.Write(msg)
	_ = c.raw.SetWriteDeadline(time.Time{})
	if werr != nil {
		return res, c.fail(StageData, werr)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return res, c.lostAfterBody(StageData, err)
	}
	res.Reply = clip(resp.StatusText)
	return res, nil
}

// lacks refuses a message asking ct of a server that does not offer it.
func (c *Conn) lacks(ct Content) *Error {
	var missing, why string
	switch {
	case ct.EightBit && !c.offers("8BITMIME"):
		missing, why = "8BITMIME", "its body holds 8-bit octets (RFC 6152)"
	case ct.UTF8 && !c.offers("SMTPUTF8"):
		missing, why = "SMTPUTF8", "its header or an address is UTF-8 (RFC 6531)"
	default:
		return nil
	}
	return withHint(&Error{Code: CodeProtocol, Stage: StageMail,
		Message: "the server does not offer " + missing + ", which this message needs: " + why +
			"; it was not sent rather than altered"}, c.server)
}

func (c *Conn) offers(ext string) bool {
	ok, _ := c.client.Extension(ext)
	return ok
}

// fail classifies err; after a reply error it resets the transaction so
// the session can carry the next message.
func (c *Conn) fail(stage Stage, err error) *Error {
	e := classify(stage, err)
	if e.SMTPCode == 0 {
		return withHint(e, c.server)
	}
	return c.refused(e)
}

// refused ends a transaction the server refused and returns the refusal;
// the session is reset for the next one unless the server is closing it.
func (c *Conn) refused(refusal *Error) *Error {
	if refusal.SMTPCode != 421 {
		if err := c.reset(); err != nil {
			c.broken = true
		}
	}
	return withHint(refusal, c.server)
}

// reset sends RSET (RFC 5321 section 4.1.1.5) on the session's own text
// connection. go-smtp's Client.Reset also forgets the EHLO, so its next
// command would say EHLO again, a round trip after every refused
// transaction; the server keeps the session's EHLO across RSET, and so
// does go-smtp when it does not see the RSET.
func (c *Conn) reset() error {
	_ = c.session.SetDeadline(time.Now().Add(c.cmdTime))
	defer c.session.SetDeadline(time.Time{})
	id, err := c.text.Cmd("RSET")
	if err != nil {
		return fmt.Errorf("transport: rset: %w", err)
	}
	c.text.StartResponse(id)
	defer c.text.EndResponse(id)
	if _, _, err := c.text.ReadResponse(250); err != nil {
		return fmt.Errorf("transport: rset: %w", err)
	}
	return nil
}

// lostAfterBody is fail for an error once the whole message was handed to
// the network: when the connection, not a reply, failed, the server may
// have taken the message, so the attempt is ambiguous.
func (c *Conn) lostAfterBody(stage Stage, err error) *Error {
	e := c.fail(stage, err)
	if e.SMTPCode == 0 && !c.raw.writeFailed {
		e.Ambiguous = true
	}
	return e
}

// rejection is a refused recipient, as a result lists it.
func rejection(rcpt string, se *smtp.SMTPError) Rejection {
	e := replyError(StageRcpt, se)
	return Rejection{Email: rcpt, SMTPCode: e.SMTPCode, EnhancedCode: e.EnhancedCode, Message: e.Message}
}

// refused lists a recipient the server refused, for good or for now.
func (r *Result) refused(rcpt string, se *smtp.SMTPError) {
	if se.Code >= 500 {
		r.Rejected = append(r.Rejected, rejection(rcpt, se))
	} else {
		r.Deferred = append(r.Deferred, rejection(rcpt, se))
	}
}

// noneAccepted reports whether the server refused all n recipients.
func (r *Result) noneAccepted(n int) bool { return len(r.Rejected)+len(r.Deferred) == n }

// weightier is the refusal a transaction whose recipients were all
// refused reports, given the one so far and the next: a refusal for now
// over one for good, so that the message is tried again, else the last.
func weightier(cur, next *smtp.SMTPError) *smtp.SMTPError {
	if cur != nil && cur.Code < 500 && next.Code >= 500 {
		return cur
	}
	return next
}

// Reusable reports whether the session can carry another message after the
// last Send: no network error, no write failure, no 421 "closing".
func (c *Conn) Reusable(lastErr error) bool {
	if c.broken || c.raw.writeFailed {
		return false
	}
	if lastErr == nil {
		return true
	}
	var e *Error
	return errors.As(lastErr, &e) && e.SMTPCode != 0 && e.SMTPCode != 421
}

// Quit ends the session politely and closes it.
func (c *Conn) Quit() error {
	_ = c.raw.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.client.Quit(); err != nil {
		return c.client.Close()
	}
	return nil
}

// Close drops the session without QUIT.
func (c *Conn) Close() error { return c.client.Close() }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func allASCII(ss []string) bool {
	for _, s := range ss {
		if !isASCII(s) {
			return false
		}
	}
	return true
}
