package submission

import (
	"errors"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// Login results, the closed set of outbound_submission_logins_total.
const (
	loginOK              = "ok"
	loginUnknownToken    = "unknown_token"
	loginNotAllowed      = "not_allowed"
	loginInvalidUsername = "invalid_username"
	loginTenantBusy      = "tenant_busy" // right token, but the tenant has all the connections it may
)

// errTenantBusy refuses a good login for now: the tenant already has
// MaxTenantConnections logged in. RFC 4954's temporary authentication
// failure, so the client's mailer keeps the message and tries later.
var errTenantBusy = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
	Message: "Too many connections for this tenant, try again later"}

// errEncryptionRequired refuses AUTH before TLS (RFC 4954 section 6): the
// password is a send token, and it must never cross the network in clear.
var errEncryptionRequired = &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11},
	Message: "Encryption required: STARTTLS first"}

// errAuthRequired refuses MAIL before a login (RFC 4954 section 6): this
// server is never an open relay.
var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
	Message: "Authentication required"}

// authenticate checks a login: the user name is the tenant id, the
// password a token whose key may send (send or admin scope) for that
// tenant, by apikey's own rules. It answers the login result (loginOK or
// why not).
func authenticate(keys Keys, username, password string) string {
	if !tenant.ValidID(username) {
		return loginInvalidUsername
	}
	key, ok := keys.Lookup(password)
	switch {
	case !ok:
		return loginUnknownToken
	case !key.Allows(apikey.ScopeSend) || !key.AllowsTenant(username):
		return loginNotAllowed
	}
	return loginOK
}

// loginServer is the server side of the LOGIN mechanism, which go-sasl
// does not provide: many mailers (older PHP and .NET ones, some printers)
// know nothing else. It asks for the user name unless the client gave it
// with AUTH, then for the password.
type loginServer struct {
	step     int
	username string
	check    func(username, password string) error
}

var errLoginSequence = errors.New("submission: unexpected LOGIN response")

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		if len(response) == 0 {
			l.step = 1
			return []byte("Username:"), false, nil
		}
		l.username, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 1:
		l.username, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.username, string(response))
	}
	return nil, true, errLoginSequence
}

// plainServer is PLAIN (RFC 4616); an authorization identity other than
// the user name is refused, since a token acts for no one else.
func plainServer(check func(username, password string) error) sasl.Server {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return smtp.ErrAuthFailed
		}
		return check(username, password)
	})
}

// throttle slows failed logins per client address: each failure within
// memory doubles the pause before the next failure is answered, up to
// max, so guessing tokens from one address is slow while a client that
// mistyped once barely notices. A success forgets the address. The table
// is bounded: past maxEntries, expired entries are dropped, and if that
// is not enough the table starts afresh (a flood from many addresses
// then meets the connection cap instead).
type throttle struct {
	base, max, memory time.Duration
	now               func() time.Time

	mu      sync.Mutex
	entries map[string]*failures
}

type failures struct {
	n    int
	last time.Time
}

const maxThrottleEntries = 10000

func newThrottle(base, max, memory time.Duration) *throttle {
	return &throttle{base: base, max: max, memory: memory, now: time.Now, entries: map[string]*failures{}}
}

// failed records a failure from addr and returns how long to wait before
// answering it.
func (t *throttle) failed(addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f := t.entries[addr]
	if f == nil || now.Sub(f.last) > t.memory {
		if len(t.entries) >= maxThrottleEntries {
			t.sweep(now)
		}
		f = &failures{}
		t.entries[addr] = f
	}
	f.n++
	f.last = now
	d := t.base
	for i := 1; i < f.n && d < t.max; i++ {
		d *= 2
	}
	return min(d, t.max)
}

func (t *throttle) sweep(now time.Time) {
	for addr, f := range t.entries {
		if now.Sub(f.last) > t.memory {
			delete(t.entries, addr)
		}
	}
	if len(t.entries) >= maxThrottleEntries {
		t.entries = map[string]*failures{}
	}
}

func (t *throttle) succeeded(addr string) {
	t.mu.Lock()
	delete(t.entries, addr)
	t.mu.Unlock()
}
