package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/textproto"
	"strings"
	"time"
)

// startTLS speaks the plain-text opening of a STARTTLS session (greeting,
// EHLO, STARTTLS), then runs the TLS handshake and returns the encrypted
// connection. go-smtp can do this too, but then keeps the TLS connection
// to itself, and pipelined transactions need it (see pipeline). The
// caller closes conn on an error.
func (d *Dialer) startTLS(ctx context.Context, conn net.Conn, host string) (*tls.Conn, *Error) {
	_ = conn.SetDeadline(deadline(ctx))
	// The limiter reads the clear text only: the TLS handshake below goes
	// to conn itself, and crypto/tls bounds its own records.
	lim := limitReplies(conn)
	text := textproto.NewConn(lim)
	if _, _, err := text.ReadResponse(220); err != nil {
		return nil, openingError(ctx, StageGreet, replyErr(err))
	}
	if err := text.PrintfLine("EHLO %s", d.heloName()); err != nil {
		return nil, openingError(ctx, StageGreet, err)
	}
	_, ehlo, err := text.ReadResponse(250)
	if err != nil {
		return nil, openingError(ctx, StageGreet, replyErr(err))
	}
	if !offersExtension(ehlo, "STARTTLS") {
		return nil, &Error{Code: CodeTLSFailed, Stage: StageTLS,
			Message: "server does not offer STARTTLS; refusing to log in without encryption"}
	}
	if err := text.PrintfLine("STARTTLS"); err != nil {
		return nil, openingError(ctx, StageTLS, err)
	}
	if _, _, err := text.ReadResponse(220); err != nil {
		return nil, openingError(ctx, StageTLS, replyErr(err))
	}
	if text.R.Buffered() > 0 || lim.buffered() > 0 {
		// Bytes that came before encryption but would be read after it:
		// the signature of a STARTTLS injection by someone on the path.
		return nil, &Error{Code: CodeTLSFailed, Stage: StageTLS,
			Message: "server sent data after its STARTTLS reply, before encryption began; refusing the session"}
	}
	_ = conn.SetDeadline(time.Time{})
	tc := tls.Client(conn, d.tlsConfig(host))
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, openingError(ctx, StageTLS, err)
	}
	return tc, nil
}

func (d *Dialer) heloName() string {
	if d.HeloName == "" {
		return "localhost" // go-smtp's default
	}
	return d.HeloName
}

// offersExtension reports whether an EHLO reply (its lines after the first,
// without codes, as textproto joins them) names the extension.
func offersExtension(ehlo, name string) bool {
	lines := strings.Split(ehlo, "\n")
	for _, line := range lines[1:] {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], name) {
			return true
		}
	}
	return false
}

// replyErr turns textproto's error for an unexpected reply into go-smtp's,
// which classify reads codes from.
func replyErr(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return smtpError(te.Code, te.Msg)
	}
	return err
}

// resumedGreeting is what go-smtp reads first on a connection that
// startTLS has already greeted: it waits for a greeting before its EHLO,
// and after STARTTLS a server sends none, so resumedConn supplies one.
const resumedGreeting = "220 TLS started\r\n"

// resumedConn is a connection secured by STARTTLS, handed to go-smtp as if
// new. go-smtp then says EHLO again over TLS, as RFC 3207 requires.
type resumedConn struct {
	*tls.Conn
	greeting *strings.Reader
}

func (c *resumedConn) Read(p []byte) (int, error) {
	if c.greeting.Len() > 0 {
		return c.greeting.Read(p)
	}
	return c.Conn.Read(p)
}
