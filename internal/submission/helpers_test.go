package submission

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/delivery"
	"github.com/outbound-mail/outbound/internal/logtest"
	"github.com/outbound-mail/outbound/internal/metrics"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// recorder is the Acceptor in tests: it keeps what it is given and
// answers what it is told to.
type recorder struct {
	mu       sync.Mutex
	got      []delivery.Submission
	err      error
	replayed bool
	// gate, when set, holds each call until it is closed (or the call's
	// context ends); entered is told when a call is waiting.
	gate    chan struct{}
	entered chan struct{}
}

func (r *recorder) AcceptSubmission(ctx context.Context, m delivery.Submission) (delivery.Accepted, error) {
	r.mu.Lock()
	gate, entered := r.gate, r.entered
	r.mu.Unlock()
	if gate != nil {
		if entered != nil {
			entered <- struct{}{}
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return delivery.Accepted{}, ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return delivery.Accepted{}, r.err
	}
	r.got = append(r.got, m)
	return delivery.Accepted{ID: "msg-" + strconv.Itoa(len(r.got)), TenantID: m.TenantID, Replayed: r.replayed}, nil
}

func (r *recorder) set(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

func (r *recorder) messages() []delivery.Submission {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery.Submission(nil), r.got...)
}

// fixture is a running server with both listeners, its certificate's CA
// and tokens of each kind.
type fixture struct {
	srv       *Server
	acceptor  *recorder
	metrics   *metrics.Metrics
	log       *logtest.Buffer
	ca        *smtptest.CA
	caFile    string
	certFile  string
	keyFile   string
	startTLS  string // address of the STARTTLS listener
	implicit  string // address of the implicit TLS listener
	sendToken string // send, any tenant
	acmeToken string // send@acme
	adminOnly string // admin@globex
	stopped   bool
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{acceptor: &recorder{}, metrics: metrics.New(false), log: &logtest.Buffer{}, ca: smtptest.NewCA(t)}
	dir := t.TempDir()
	f.certFile, f.keyFile = smtptest.WriteLeaf(t, dir, f.ca.Leaf(t, smtptest.LeafOptions{}))
	f.caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(f.caFile, f.ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	var keys apikey.Set
	for _, k := range []struct {
		name  string
		scope apikey.Scope
		token *string
	}{{"any", apikey.ScopeSend, &f.sendToken}, {"acme", "send@acme", &f.acmeToken}, {"globex", "admin@globex", &f.adminOnly}} {
		token, key, err := apikey.Generate(k.name, k.scope)
		if err != nil {
			t.Fatal(err)
		}
		*k.token = token
		keys = append(keys, key)
	}
	cfg.CertFile, cfg.KeyFile = f.certFile, f.keyFile
	if cfg.LoginDelay == 0 {
		cfg.LoginDelay, cfg.MaxLoginDelay = time.Millisecond, 4*time.Millisecond
	}
	srv, err := New(cfg, Deps{Log: slog.New(slog.NewJSONHandler(f.log, nil)), Keys: keys, Acceptor: f.acceptor, Metrics: f.metrics})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.startTLS = f.listen(t, srv.Serve)
	f.implicit = f.listen(t, srv.ServeTLS)
	t.Cleanup(func() {
		if !f.stopped {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
	})
	return f
}

func (f *fixture) listen(t *testing.T, serve func(net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go serve(ln)
	return ln.Addr().String()
}

func (f *fixture) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: f.ca.Pool(), ServerName: "127.0.0.1"}
}

// dial connects to the STARTTLS listener and upgrades.
func (f *fixture) dial(t *testing.T) *smtp.Client {
	t.Helper()
	c, err := smtp.DialStartTLS(f.startTLS, f.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialPlain connects to the STARTTLS listener and stays in clear.
func (f *fixture) dialPlain(t *testing.T) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(f.startTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) login(t *testing.T, user, token string) *smtp.Client {
	t.Helper()
	c := f.dial(t)
	if err := c.Auth(sasl.NewPlainClient("", user, token)); err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	return c
}

// send runs one transaction and returns the reply text to the final dot.
func send(c *smtp.Client, to []string, body string, opts *smtp.MailOptions) (string, error) {
	if err := c.Mail("app@acme.example", opts); err != nil {
		return "", err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return "", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	return resp.StatusText, nil
}

// wantSMTP checks err is the SMTP reply code and enhanced code.
func wantSMTP(t *testing.T, err error, code int, enhanced smtp.EnhancedCode) *smtp.SMTPError {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("want SMTP %d %v, got %v", code, enhanced, err)
	}
	if se.Code != code || se.EnhancedCode != enhanced {
		t.Fatalf("want SMTP %d %v, got %d %v %q", code, enhanced, se.Code, se.EnhancedCode, se.Message)
	}
	return se
}

const simpleMessage = "From: Acme <billing@acme.example>\r\nTo: client@example.com\r\nSubject: Invoice\r\n\r\nHello.\r\n"
