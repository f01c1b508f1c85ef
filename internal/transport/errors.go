package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/egress"
)

// Error codes. They are part of the API (verify results, attempt records,
// a profile's last_error).
const (
	CodeDNSFailed      = "dns_failed"
	CodeConnectFailed  = "connect_failed"
	CodeTLSFailed      = "tls_failed"
	CodeAuthFailed     = "auth_failed"
	CodeEgressDenied   = "egress_denied"
	CodeTimeout        = "timeout"
	CodeConnectionLost = "connection_lost" // the server went away mid-session
	CodeRejected       = "rejected"        // the server answered a command with an error reply
	CodeProtocol       = "protocol_error"  // the exchange cannot work with this server
	CodeReplyTooLong   = "reply_too_long"  // a reply past the bounds of replylimit.go: a server fault
)

// Stage is the step of the session at which an error happened.
type Stage string

const (
	StageConnect Stage = "connect"
	StageTLS     Stage = "tls"
	StageGreet   Stage = "greeting"
	StageAuth    Stage = "auth"
	StageMail    Stage = "mail"
	StageRcpt    Stage = "rcpt"
	StageData    Stage = "data"
)

// Error is a failed SMTP step, classified.
type Error struct {
	Code         string
	Stage        Stage
	SMTPCode     int    // 0 when the server gave no reply
	EnhancedCode string // "5.7.8", or "" when the reply had none
	Message      string // the server's reply text, or a description
	Hint         string // what a person can do about it
	// Ambiguous is set when the connection was lost after the whole message
	// and its final dot were written but before the server replied: the
	// server may or may not have taken it.
	Ambiguous bool
	Err       error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "smtp %s: %s", e.Stage, e.Code)
	if e.SMTPCode != 0 {
		fmt.Fprintf(&b, ": %d", e.SMTPCode)
		if e.EnhancedCode != "" {
			b.WriteString(" " + e.EnhancedCode)
		}
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying the same thing cannot help: a 5xx
// reply, or a server that cannot work the way it is configured. Network
// trouble and 4xx replies are temporary.
func (e *Error) Permanent() bool {
	if e.SMTPCode != 0 {
		return e.SMTPCode >= 500
	}
	switch e.Code {
	case CodeTLSFailed, CodeProtocol, CodeReplyTooLong, CodeEgressDenied:
		return true
	}
	return false
}

// Stale reports whether a pooled connection turned out to be dead on its
// first command (closed by the server while idle, or 421 "closing"): the
// message was never started and goes out on a fresh connection at once.
func (e *Error) Stale() bool {
	return e.Stage == StageMail && (e.Code == CodeConnectionLost || e.SMTPCode == 421)
}

func replyError(stage Stage, se *smtp.SMTPError) *Error {
	e := &Error{Code: CodeRejected, Stage: stage, SMTPCode: se.Code, Message: clip(se.Message), Err: se}
	if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
		e.EnhancedCode = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	if stage == StageAuth {
		e.Code = CodeAuthFailed
	}
	return e
}

// classify turns any error from a step of the session into an *Error.
func classify(stage Stage, err error) *Error {
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return replyError(stage, se)
	}
	e := &Error{Stage: stage, Err: err, Message: clip(describe(err))}
	var dnsErr *egress.DNSError
	var netDNSErr *net.DNSError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var verifyErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.Is(err, errReplyTooLong), errors.Is(err, smtp.ErrTooLongLine):
		// Checked first: the session is not lost, the server broke it.
		e.Code = CodeReplyTooLong
	case errors.Is(err, egress.ErrDenied):
		e.Code = CodeEgressDenied
	case errors.As(err, &dnsErr), errors.As(err, &netDNSErr):
		e.Code = CodeDNSFailed
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		e.Code = CodeTimeout
	case errors.As(err, &unknownAuthority), errors.As(err, &hostnameErr), errors.As(err, &invalidCert),
		errors.As(err, &verifyErr), errors.As(err, &recordErr):
		e.Code = CodeTLSFailed
	case stage == StageConnect:
		e.Code = CodeConnectFailed
	case stage == StageTLS:
		if isNetwork(err) {
			e.Code = CodeConnectionLost
		} else {
			e.Code = CodeTLSFailed
		}
	case isNetwork(err):
		e.Code = CodeConnectionLost
	default:
		// go-smtp refuses some things itself (an option the server does
		// not support, a malformed line): retrying will not change that.
		e.Code = CodeProtocol
	}
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isNetwork(err error) bool {
	var ne net.Error
	var opErr *net.OpError
	return errors.As(err, &ne) || errors.As(err, &opErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED)
}

// describe is a short text for a non-reply error. It never includes a
// credential: none of the errors classified here carries one.
func describe(err error) string {
	var hostnameErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var unknownAuthority x509.UnknownAuthorityError
	switch {
	case errors.As(err, &hostnameErr):
		return hostnameErr.Error()
	case errors.As(err, &invalidCert):
		return invalidCert.Error()
	case errors.As(err, &unknownAuthority):
		return "certificate signed by unknown authority"
	}
	return err.Error()
}
