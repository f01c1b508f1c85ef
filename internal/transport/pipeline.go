package transport

import (
	"bytes"
	"errors"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// pipeline runs mail transactions with PIPELINING (RFC 2920): MAIL FROM,
// every RCPT TO and DATA leave in one write and their replies are read
// after it, so a message costs two round trips instead of three plus one
// per extra recipient. Far from the provider that roughly halves the time
// each pooled session spends per message (docs/measurements.md, "Pipelined
// transactions"); on loopback it saves writes.
//
// A message for one recipient, to a server that offers CHUNKING (RFC
// 3030; Gmail and Microsoft 365 do), goes as BDAT instead of DATA: the
// body follows its command without waiting for a 354, so the whole
// transaction is one write and one round trip. With several recipients it
// stays on DATA, because the body must wait for the replies to RCPT: a
// recipient refused for now is tried again later, alone, and the body
// goes now to the others (see Send).
// BDAT carries the body as it is, with no dot-stuffing and no line-ending
// repair, so a body with a bare LF (message.Compose writes none) goes as
// DATA, whose writer turns it into CRLF as before.
//
// go-smtp's client sends one command and waits for its reply, and keeps
// its connection to itself. This package makes the TLS connection itself
// (for STARTTLS too, see startTLS), so once go-smtp has greeted and
// logged in, and the server offers PIPELINING, the transaction is spoken
// here on that connection. Every exchange is complete before Send returns,
// so go-smtp's own reader never sees a byte meant for this one, and QUIT
// can still go through go-smtp (RSET goes here too, see Conn.reset).
type pipeline struct {
	conn    net.Conn // the TLS connection, read through the session's replyLimiter
	text    *textproto.Conn
	ext     func(name string) (bool, string)
	cmdTime time.Duration
}

func newPipeline(conn net.Conn, text *textproto.Conn, ext func(string) (bool, string), cmdTime time.Duration) *pipeline {
	return &pipeline{conn: conn, text: text, ext: ext, cmdTime: cmdTime}
}

// mailCommand is MAIL FROM with the parameters the server supports.
func (p *pipeline) mailCommand(from string, size int, utf8 bool) (string, error) {
	var b strings.Builder
	b.WriteString("MAIL FROM:<" + from + ">")
	if p.has("8BITMIME") {
		b.WriteString(" BODY=8BITMIME")
	}
	if p.has("SIZE") {
		b.WriteString(" SIZE=" + strconv.Itoa(size))
	}
	if utf8 {
		if !p.has("SMTPUTF8") {
			return "", errors.New("server does not support SMTPUTF8, which a non-ASCII address needs")
		}
		b.WriteString(" SMTPUTF8")
	}
	return b.String(), nil
}

// sendPipelined is Send over the pipeline; results and errors mean the
// same.
func (c *Conn) sendPipelined(from string, rcpts []string, msg []byte, utf8 bool) (Result, error) {
	p := c.pipe
	defer p.conn.SetDeadline(time.Time{})
	for _, addr := range append([]string{from}, rcpts...) {
		if strings.ContainsAny(addr, "\r\n") {
			return Result{}, &Error{Code: CodeProtocol, Stage: StageMail, Message: "address contains a line break"}
		}
	}
	mail, err := p.mailCommand(from, len(msg), utf8)
	if err != nil {
		return Result{}, withHint(&Error{Code: CodeProtocol, Stage: StageMail, Message: err.Error(), Err: err}, c.server)
	}
	chunked := len(rcpts) == 1 && p.has("CHUNKING") && !hasBareLF(msg)

	// One write: MAIL, RCPT..., then DATA, or BDAT with the whole body.
	deadline := p.cmdTime
	if chunked {
		deadline = c.dataTime
	}
	_ = p.conn.SetDeadline(time.Now().Add(deadline))
	w := p.text.W
	w.WriteString(mail + "\r\n")
	for _, rcpt := range rcpts {
		w.WriteString("RCPT TO:<" + rcpt + ">\r\n")
	}
	if chunked {
		end := "" // DATA's writer ends the last line; so does this
		if !bytes.HasSuffix(msg, []byte("\r\n")) {
			end = "\r\n"
		}
		w.WriteString("BDAT " + strconv.Itoa(len(msg)+len(end)) + " LAST\r\n")
		w.Write(msg)
		w.WriteString(end)
	} else {
		w.WriteString("DATA\r\n")
	}
	if err := w.Flush(); err != nil {
		return Result{}, c.fail(StageMail, err)
	}
	// A connection lost while replies are still due: once a chunked body
	// was handed over whole, the server may have taken it.
	lost := c.fail
	if chunked {
		lost = c.lostAfterBody
	}

	// Their replies, in order; all are read so the session stays in step.
	mailErr, err := p.reply(250)
	if err != nil {
		return Result{}, lost(StageMail, err)
	}
	var res Result
	var refusal, closing *smtp.SMTPError
	for _, rcpt := range rcpts {
		se, err := p.reply(250)
		switch {
		case err != nil:
			return res, lost(StageRcpt, err)
		case se == nil || mailErr != nil:
		case se.Code == 421:
			closing = se // the server is ending the session: no body goes on it
		default:
			res.refused(rcpt, se)
			refusal = weightier(refusal, se)
		}
	}
	// abort is why the body does not go.
	var abort *Error
	switch {
	case mailErr != nil:
		abort = classify(StageMail, mailErr)
	case closing != nil:
		abort = classify(StageRcpt, closing)
	case res.noneAccepted(len(rcpts)):
		abort = classify(StageRcpt, refusal)
	}
	if chunked {
		return c.chunkedReply(res, abort)
	}

	dataErr, err := p.reply(354)
	if err != nil {
		return res, c.fail(StageData, err)
	}
	if abort != nil {
		if dataErr == nil {
			// The server opened DATA with no recipient accepted; ending
			// it with a dot would send an empty message, so the session
			// is dropped instead.
			c.broken = true
			_ = c.client.Close()
			return res, withHint(abort, c.server)
		}
		return res, c.refused(abort)
	}
	if dataErr != nil {
		return res, c.fail(StageData, dataErr)
	}

	_ = p.conn.SetDeadline(time.Now().Add(c.dataTime))
	dot := p.text.DotWriter()
	_, werr := dot.Write(msg)
	if werr == nil {
		werr = dot.Close() // the final dot, flushed
	}
	if werr != nil {
		return res, c.fail(StageData, werr)
	}
	code, text, err := p.text.ReadResponse(0)
	if err != nil {
		return res, c.lostAfterBody(StageData, err)
	}
	if code != 250 {
		return res, c.fail(StageData, smtpError(code, text))
	}
	res.Reply = clip(text)
	return res, nil
}

// chunkedReply reads the reply to BDAT ... LAST, which says whether the
// server took the message. It is the word that counts: a server that took
// the body after refusing its envelope has the message, and deferring it
// would send it again.
func (c *Conn) chunkedReply(res Result, refusal *Error) (Result, error) {
	code, text, err := c.pipe.text.ReadResponse(0)
	switch {
	case err != nil:
		e := c.lostAfterBody(StageData, err)
		if refusal != nil {
			// The envelope was refused, so the body was not taken.
			e.Ambiguous = false
		}
		return res, e
	case code == 250:
		res.Reply = clip(text)
		return res, nil
	case refusal != nil:
		// The refusal of the envelope says more than the reply to the
		// body ("554 no valid recipients").
		return res, c.refused(refusal)
	default:
		return res, c.fail(StageData, smtpError(code, text))
	}
}

// hasBareLF reports whether msg has a line feed without a carriage return
// before it.
func hasBareLF(msg []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			return false
		}
		if i+j == 0 || msg[i+j-1] != '\r' {
			return true
		}
		i += j + 1
	}
}

// has reports whether the server offers an extension.
func (p *pipeline) has(ext string) bool {
	ok, _ := p.ext(ext)
	return ok
}

// reply reads one reply. A reply other than want is returned as an
// *smtp.SMTPError; err is for the connection (or a line that is not SMTP).
func (p *pipeline) reply(want int) (*smtp.SMTPError, error) {
	code, text, err := p.text.ReadResponse(0)
	if err != nil {
		return nil, err
	}
	if code != want {
		return smtpError(code, text), nil
	}
	return nil, nil
}

// smtpError is a reply as go-smtp reports one, with its RFC 3463
// enhanced status code ("5.1.1") taken off the front of each line.
func smtpError(code int, text string) *smtp.SMTPError {
	se := &smtp.SMTPError{Code: code, Message: text}
	first, rest, ok := strings.Cut(text, " ")
	if !ok {
		return se
	}
	parts := strings.Split(first, ".")
	if len(parts) != 3 {
		return se
	}
	var ec smtp.EnhancedCode
	for i, part := range parts {
		n, err := strconv.Atoi(part)
		if err != nil {
			return se
		}
		ec[i] = n
	}
	se.EnhancedCode = ec
	se.Message = strings.ReplaceAll(rest, "\n"+first+" ", "\n")
	return se
}
