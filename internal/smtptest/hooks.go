package smtptest

import (
	"time"

	"github.com/emersion/go-smtp"
)

// The stages Hooks.Stall is asked about: points in the SMTP dialogue where
// the server can hold its reply back.
const (
	StageGreeting = "greeting" // after the TCP accept (and the TLS handshake in ImplicitTLS), before the 220
	StageAuth     = "auth"     // after the credentials arrived, before 235 or 535
	StageMail     = "mail"     // before the reply to MAIL FROM
	StageRcpt     = "rcpt"     // before the reply to each RCPT TO
	StageData     = "data"     // after the final dot was read, before the reply
)

// Hooks let a test make the server misbehave. Every field may be nil. The
// functions are called from the server's connection goroutines, possibly
// from several at once, so they must be safe for concurrent use. A hook
// that returns a non-nil *smtp.SMTPError has the server answer with it.
//
// Change hooks while the server runs with Server.SetHooks.
type Hooks struct {
	// Stall returns how long to wait before replying at a stage, one of
	// the Stage... constants (zero: reply at once). The wait ends early when
	// the server closes.
	Stall func(stage string) time.Duration

	// Auth is called with the username of every AUTH attempt allowed to
	// proceed, before the password is checked: return, for example,
	// 454 4.7.0 to refuse logins for a while.
	Auth func(username string) *smtp.SMTPError
	// Mail is called for MAIL FROM after the AUTH requirement is met.
	Mail func(from string) *smtp.SMTPError
	// Rcpt is called for each RCPT TO: refuse one address with 550 5.1.1.
	Rcpt func(to string) *smtp.SMTPError
	// Data is called once the whole message has been read; an error
	// answers the final dot (451 4.3.0, 552 5.3.4, 550 5.4.5 ...) and the
	// message is not recorded.
	Data func(msg Message) *smtp.SMTPError

	// DropMidData is asked when DATA begins (msg has the envelope, no
	// Data). If it returns true the server waits for the first bytes of the
	// body, then closes the TCP connection: the message is not recorded and
	// the client sees a network error, never a reply to its final dot.
	DropMidData func(msg Message) bool
	// DropAfterData is asked after the whole message was read. If it
	// returns true the server records the message (it was received) and
	// closes the TCP connection without replying: the client cannot know
	// whether the message was accepted.
	DropAfterData func(msg Message) bool
}
