package smtptest

import (
	"errors"
	"io"
	"slices"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

var (
	// errAuthRequired is RFC 4954's answer to MAIL before AUTH (go-smtp's
	// own ErrAuthRequired says 502).
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: "Authentication required"}
	// errBadCredentials is worded as Gmail words it.
	errBadCredentials = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
		Message: "Username and Password not accepted"}
	// errTLSRequired is what go-smtp answers AUTH without TLS (RFC 4954).
	errTLSRequired = &smtp.SMTPError{Code: 523, EnhancedCode: smtp.EnhancedCode{5, 7, 10},
		Message: "TLS is required"}
	// errDropped is returned after the connection was closed on purpose;
	// nobody reads the reply go-smtp tries to write for it.
	errDropped = errors.New("smtptest: connection dropped by hook")
)

// session is one SMTP session (go-smtp makes a new one after STARTTLS).
type session struct {
	srv      *Server
	conn     *smtp.Conn
	raw      *trackedConn
	username string // set by a successful AUTH
	from     string
	to       []string
	body     string // MAIL's BODY parameter
	utf8     bool   // MAIL's SMTPUTF8
}

var _ smtp.AuthSession = (*session)(nil)

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{srv: s, conn: c, raw: rawConn(c.Conn())}, nil
}

func (se *session) encrypted() bool {
	_, ok := tlsConn(se.conn.Conn())
	return ok
}

func (se *session) authAllowed() bool {
	return se.encrypted() || se.srv.opts.AllowInsecureAuth
}

// AuthMechanisms is what EHLO advertises: nothing where AUTH is not allowed.
func (se *session) AuthMechanisms() []string {
	if !se.authAllowed() {
		return nil
	}
	return se.srv.opts.Mechanisms
}

// Auth counts the attempt, then hands go-smtp the SASL exchange.
func (se *session) Auth(mech string) (sasl.Server, error) {
	se.srv.mu.Lock()
	se.srv.authAttempts++
	se.srv.mu.Unlock()

	if !se.authAllowed() {
		return nil, errTLSRequired
	}
	if !slices.Contains(se.srv.opts.Mechanisms, mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	switch mech {
	case sasl.Login:
		return &loginServer{authenticate: se.login}, nil
	case mechXOAuth2:
		return &xoauth2Server{authenticate: se.bearer}, nil
	case sasl.OAuthBearer:
		return sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if se.bearer(o.Username, o.Token) != nil {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			return nil
		}), nil
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return errBadCredentials
		}
		return se.login(username, password)
	}), nil
}

// login checks credentials. Errors go back to go-smtp unwrapped, as it
// answers with an *smtp.SMTPError only when it gets one as is.
func (se *session) login(username, password string) error {
	se.srv.stall(StageAuth)
	if hook := se.srv.currentHooks().Auth; hook != nil {
		if err := hook(username); err != nil {
			return err
		}
	}
	se.srv.mu.Lock()
	defer se.srv.mu.Unlock()
	want, known := se.srv.users[username]
	if !se.srv.opts.AcceptAnyAuth && (!known || want != password) {
		return errBadCredentials
	}
	se.srv.auths++
	se.username = username
	return nil
}

// bearer checks an OAuth2 access token.
func (se *session) bearer(username, token string) error {
	se.srv.stall(StageAuth)
	if hook := se.srv.currentHooks().Auth; hook != nil {
		if err := hook(username); err != nil {
			return err
		}
	}
	if check := se.srv.opts.Bearer; check == nil || !check(username, token) {
		return errBadCredentials
	}
	se.srv.mu.Lock()
	se.srv.auths++
	se.srv.mu.Unlock()
	se.username = username
	return nil
}

func (se *session) Mail(from string, opts *smtp.MailOptions) error {
	se.srv.stall(StageMail)
	if !se.srv.opts.NoAuth && se.username == "" {
		return errAuthRequired
	}
	if hook := se.srv.currentHooks().Mail; hook != nil {
		if err := hook(from); err != nil {
			return err
		}
	}
	se.from, se.to = from, nil
	se.body, se.utf8 = "", false
	if opts != nil {
		se.body, se.utf8 = string(opts.Body), opts.UTF8
	}
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.srv.stall(StageRcpt)
	if hook := se.srv.currentHooks().Rcpt; hook != nil {
		if err := hook(to); err != nil {
			return err
		}
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	hooks := se.srv.currentHooks()
	msg := Message{From: se.from, To: slices.Clone(se.to), Body: se.body, UTF8: se.utf8, Username: se.username,
		ConnID: se.raw.id, TLS: se.encrypted()}

	if hooks.DropMidData != nil && hooks.DropMidData(msg) {
		var first [512]byte
		_, _ = r.Read(first[:]) // be sure the client is sending the body
		se.raw.Close()
		return errDropped
	}

	data, err := io.ReadAll(r)
	if err != nil {
		return err // e.g. 552 from go-smtp's size limit
	}
	msg.Data, msg.At = data, time.Now()

	se.srv.stall(StageData)
	if hooks.DropAfterData != nil && hooks.DropAfterData(msg) {
		se.srv.record(msg)
		se.raw.Close()
		return errDropped
	}
	if hooks.Data != nil {
		if err := hooks.Data(msg); err != nil {
			return err
		}
	}
	se.srv.record(msg)
	return nil
}

func (se *session) Reset() { se.from, se.to, se.body, se.utf8 = "", nil, "", false }

func (se *session) Logout() error { return nil }

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login), which go-sasl does not provide: the client
// sends the username (often as the initial response) and then the password,
// each after a challenge.
type loginServer struct {
	authenticate func(username, password string) error
	gotUser      bool
	username     string
}

func (a *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch {
	case !a.gotUser && response == nil:
		return []byte("Username:"), false, nil
	case !a.gotUser:
		a.gotUser, a.username = true, string(response)
		return []byte("Password:"), false, nil
	default:
		return nil, true, a.authenticate(a.username, string(response))
	}
}
