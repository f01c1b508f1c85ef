package submission

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/delivery"
	"github.com/outbound-mail/outbound/internal/outage"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/validation"
)

func TestSubmitOverStartTLS(t *testing.T) {
	f := newFixture(t, Config{})
	c := f.login(t, "acme", f.acmeToken)
	text, err := send(c, []string{"client@example.com", "cc@example.com"}, simpleMessage, nil)
	if err != nil {
		t.Fatal(err)
	}
	if text != "2.0.0 OK queued as msg-1" {
		t.Errorf("reply %q, want the id in it", text)
	}
	got := f.acceptor.messages()
	if len(got) != 1 {
		t.Fatalf("acceptor got %d messages", len(got))
	}
	m := got[0]
	if m.TenantID != "acme" || strings.Join(m.Recipients, ",") != "client@example.com,cc@example.com" || string(m.Raw) != simpleMessage {
		t.Errorf("acceptor got %+v %q", m, m.Raw)
	}
	if !strings.Contains(f.log.String(), `"msg":"submission message","tenant_id":"acme","message_id":"msg-1"`) {
		t.Errorf("no message log line:\n%s", f.log)
	}
}

func TestEightBitAndUTF8PassThroughByteForByte(t *testing.T) {
	f := newFixture(t, Config{})
	c := f.login(t, "acme", f.sendToken)
	if ok, _ := c.Extension("SMTPUTF8"); !ok {
		t.Error("SMTPUTF8 not advertised")
	}
	if ok, _ := c.Extension("8BITMIME"); !ok {
		t.Error("8BITMIME not advertised")
	}
	// A UTF-8 header (RFC 6532), a Latin-1 byte in an 8bit body, a line
	// starting with a dot (dot-stuffed on the wire) and one with only a dot.
	body := "From: Zoë <zoe@acme.example>\r\nTo: Jürgen <jürgen@exämple.de>\r\nSubject: Grüße ✓\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		"Ünïcödé body \xe9\r\n.leading dot\r\n.\r\n..two\r\nend\r\n"
	if _, err := send(c, []string{"jürgen@exämple.de"}, body, &smtp.MailOptions{UTF8: true}); err != nil {
		t.Fatal(err)
	}
	m := f.acceptor.messages()[0]
	if string(m.Raw) != body || m.Recipients[0] != "jürgen@exämple.de" {
		t.Errorf("raw changed:\n got %q\nwant %q (rcpt %q)", m.Raw, body, m.Recipients)
	}
}

func TestBareLineFeedsBecomeCRLF(t *testing.T) {
	for in, want := range map[string]string{
		"a\r\nb\r\n":   "a\r\nb\r\n",
		"a\nb\n":       "a\r\nb\r\n",
		"\na\r\n\nb\n": "\r\na\r\n\r\nb\r\n",
		"a\rb":         "a\rb",
	} {
		if got := string(crlf([]byte(in))); got != want {
			t.Errorf("crlf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSubmitOverImplicitTLS(t *testing.T) {
	f := newFixture(t, Config{})
	c, err := smtp.DialTLS(f.implicit, f.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered inside TLS")
	}
	if err := c.Auth(sasl.NewPlainClient("", "globex", f.sendToken)); err != nil {
		t.Fatal(err)
	}
	if _, err := send(c, []string{"a@example.com"}, simpleMessage, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.acceptor.messages(); len(got) != 1 || got[0].TenantID != "globex" {
		t.Errorf("acceptor got %+v", got)
	}
}

func TestNoAuthBeforeTLS(t *testing.T) {
	f := newFixture(t, Config{})
	c := f.dialPlain(t)
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH advertised before STARTTLS")
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS not advertised")
	}
	// go-smtp's client would refuse to send PLAIN in clear; a careless
	// client does not, and must still be turned away.
	tp := rawConn(t, f.startTLS)
	tp.cmd(t, "EHLO careless.test", 250)
	line := tp.cmd(t, "AUTH PLAIN AGFjbWUAc2VjcmV0", 538)
	if !strings.HasPrefix(line, "5.7.11 ") {
		t.Errorf("AUTH in clear: %q", line)
	}
	tp.cmd(t, "MAIL FROM:<a@acme.example>", 530)
}

func TestMailWithoutLoginRefused(t *testing.T) {
	f := newFixture(t, Config{})
	c := f.dial(t)
	if ok, params := c.Extension("AUTH"); !ok || params != "PLAIN LOGIN" {
		t.Errorf("AUTH after STARTTLS: %v %q", ok, params)
	}
	wantSMTP(t, c.Mail("a@acme.example", nil), 530, smtp.EnhancedCode{5, 7, 0})
	if len(f.acceptor.messages()) != 0 {
		t.Error("a message got through without a login")
	}
}

func TestLogins(t *testing.T) {
	f := newFixture(t, Config{})
	for _, tc := range []struct {
		name, user, token string
		ok                bool
	}{
		{"unbound send key, any tenant", "initech", f.sendToken, true},
		{"bound key, its tenant", "acme", f.acmeToken, true},
		{"bound key, another tenant", "globex", f.acmeToken, false},
		{"tenant admin key, its tenant", "globex", f.adminOnly, true},
		{"tenant admin key, another tenant", "acme", f.adminOnly, false},
		{"unknown token", "acme", "obk_not-a-token", false},
		{"empty token", "acme", "", false},
		{"not a tenant id", "acme/../x", f.sendToken, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.dial(t)
			err := c.Auth(sasl.NewPlainClient("", tc.user, tc.token))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantSMTP(t, err, 535, smtp.EnhancedCode{5, 7, 8})
		})
	}
	t.Run("authorization identity of another", func(t *testing.T) {
		c := f.dial(t)
		wantSMTP(t, c.Auth(sasl.NewPlainClient("globex", "acme", f.sendToken)), 535, smtp.EnhancedCode{5, 7, 8})
	})
	metrics := scrape(t, f)
	for _, want := range []string{
		`outbound_submission_logins_total{result="ok"} 3`,
		`outbound_submission_logins_total{result="not_allowed"} 2`,
		`outbound_submission_logins_total{result="unknown_token"} 2`,
		`outbound_submission_logins_total{result="invalid_username"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(f.log.String(), f.sendToken) || strings.Contains(f.log.String(), f.acmeToken) {
		t.Error("a token reached the log")
	}
}

func TestFailedLoginsSlowDown(t *testing.T) {
	th := newThrottle(100*time.Millisecond, time.Second, time.Minute)
	now := time.Unix(1000, 0)
	th.now = func() time.Time { return now }
	var got []time.Duration
	for range 6 {
		got = append(got, th.failed("192.0.2.1"))
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
	if d := th.failed("192.0.2.2"); d != 100*time.Millisecond {
		t.Errorf("another address starts at %v", d)
	}
	now = now.Add(2 * time.Minute)
	if d := th.failed("192.0.2.1"); d != 100*time.Millisecond {
		t.Errorf("after the memory, %v", d)
	}
	th.failed("192.0.2.1")
	th.succeeded("192.0.2.1")
	if d := th.failed("192.0.2.1"); d != 100*time.Millisecond {
		t.Errorf("after a success, %v", d)
	}
}

func TestFailedLoginIsAnsweredLate(t *testing.T) {
	f := newFixture(t, Config{LoginDelay: 150 * time.Millisecond, MaxLoginDelay: time.Second})
	c := f.dial(t)
	start := time.Now()
	c.Auth(sasl.NewPlainClient("", "acme", "wrong"))
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("first failure answered after %v", d)
	}
	start = time.Now()
	c.Auth(sasl.NewPlainClient("", "acme", "wrong"))
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("second failure answered after %v", d)
	}
	start = time.Now()
	if err := c.Auth(sasl.NewPlainClient("", "acme", f.acmeToken)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("a good login waited %v", d)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, Config{})
	fields := func(code, msg string) error {
		v := &validation.Error{}
		v.Add("subject", code, msg)
		return v
	}
	counted := map[string]int{}
	for _, tc := range []struct {
		name     string
		err      error
		code     int
		enhanced smtp.EnhancedCode
		text     string
		result   string
	}{
		{"rate", fmt.Errorf("x: %w", &ratelimit.DeniedError{Result: ratelimit.Result{Limit: 60, RetryAfter: 41500 * time.Millisecond}}),
			451, smtp.EnhancedCode{4, 7, 0}, "try again in 42 seconds", "rate_limited"},
		{"paused", &tenant.PausedError{Reason: "unpaid\r\ninvoice"}, 451, smtp.EnhancedCode{4, 7, 0}, "paused for this tenant: unpaid  invoice", "paused"},
		{"too many recipients", fields("too_many_recipients", "at most 100"), 452, smtp.EnhancedCode{4, 5, 3}, "at most 100", "too_many_recipients"},
		{"too large", fields("too_large", "at most 25 MiB"), 552, smtp.EnhancedCode{5, 3, 4}, "at most 25 MiB", "too_large"},
		{"malformed", fields("invalid_characters", "must not contain control characters"), 550, smtp.EnhancedCode{5, 6, 0},
			"subject: must not contain control characters", "invalid"},
		{"invalid email", fields("invalid_email", "not an address"), 550, smtp.EnhancedCode{5, 6, 0}, "subject: not an address", "invalid"},
		{"from mismatch", &delivery.FromMismatchError{Account: "billing@acme.example"}, 550, smtp.EnhancedCode{5, 7, 1},
			"sends as billing@acme.example", "from_mismatch"},
		{"no route", fmt.Errorf("x: %w", delivery.ErrNoRoute), 451, smtp.EnhancedCode{4, 3, 5}, "no default relay", "no_route"},
		{"storage down", fmt.Errorf("queue: accept: %w", outage.ErrUnavailable), 451, smtp.EnhancedCode{4, 3, 0}, "try again", "unavailable"},
		{"idempotency reused", queue.ErrIdempotencyKeyReused, 550, smtp.EnhancedCode{5, 6, 0}, "Message-ID", "idempotency_reused"},
		{"unknown", errors.New("something nobody classified"), 451, smtp.EnhancedCode{4, 3, 0}, "try again later", "error"},
	} {
		counted[tc.result]++
		t.Run(tc.name, func(t *testing.T) {
			f.acceptor.set(tc.err)
			c := f.login(t, "acme", f.acmeToken)
			_, err := send(c, []string{"a@example.com"}, simpleMessage, nil)
			se := wantSMTP(t, err, tc.code, tc.enhanced)
			if !strings.Contains(se.Message, tc.text) {
				t.Errorf("reply text %q lacks %q", se.Message, tc.text)
			}
			if want := fmt.Sprintf(`outbound_submission_messages_total{result="%s",tenant=""} %d`, tc.result, counted[tc.result]); !strings.Contains(scrape(t, f), want) {
				t.Errorf("not counted as %s", tc.result)
			}
			// The session goes on: the next message is taken.
			f.acceptor.set(nil)
			if _, err := send(c, []string{"a@example.com"}, simpleMessage, nil); err != nil {
				t.Errorf("after the refusal: %v", err)
			}
		})
	}
}

func TestReplayAnswersTheFirstID(t *testing.T) {
	f := newFixture(t, Config{})
	f.acceptor.replayed = true
	c := f.login(t, "acme", f.acmeToken)
	text, err := send(c, []string{"a@example.com"}, simpleMessage, nil)
	if err != nil || text != "2.0.0 OK queued as msg-1" {
		t.Fatalf("%q %v", text, err)
	}
	if !strings.Contains(scrape(t, f), `outbound_submission_messages_total{result="replayed",tenant=""} 1`) {
		t.Error("replay not counted")
	}
}

func TestSizeLimits(t *testing.T) {
	f := newFixture(t, Config{MaxMessageBytes: 2000, MaxHeaderBytes: 500})
	c := f.login(t, "acme", f.acmeToken)
	if size, ok := c.MaxMessageSize(); !ok || size != 2000 {
		t.Errorf("SIZE %d %v", size, ok)
	}
	wantSMTP(t, c.Mail("a@acme.example", &smtp.MailOptions{Size: 2001}), 552, smtp.EnhancedCode{5, 3, 4})

	_, err := send(c, []string{"a@example.com"}, simpleMessage+strings.Repeat("x", 60)+"\r\n"+strings.Repeat(strings.Repeat("y", 70)+"\r\n", 30), nil)
	wantSMTP(t, err, 552, smtp.EnhancedCode{5, 3, 4})

	header := "From: a@acme.example\r\n" + strings.Repeat("X-Long: "+strings.Repeat("h", 60)+"\r\n", 10) + "\r\nbody\r\n"
	_, err = send(c, []string{"a@example.com"}, header, nil)
	se := wantSMTP(t, err, 552, smtp.EnhancedCode{5, 3, 4})
	if !strings.Contains(se.Message, "Header section") {
		t.Errorf("header refusal %q", se.Message)
	}
	if len(f.acceptor.messages()) != 0 {
		t.Error("an oversized message reached the acceptor")
	}
	if _, err := send(c, []string{"a@example.com"}, simpleMessage, nil); err != nil {
		t.Errorf("a small one after: %v", err)
	}
}

func TestTooManyRecipients(t *testing.T) {
	f := newFixture(t, Config{MaxRecipients: 3})
	c := f.login(t, "acme", f.acmeToken)
	if err := c.Mail("a@acme.example", nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := c.Rcpt(fmt.Sprintf("r%d@example.com", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	wantSMTP(t, c.Rcpt("r3@example.com", nil), 452, smtp.EnhancedCode{4, 5, 3})
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, simpleMessage)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := f.acceptor.messages()[0].Recipients; len(got) != 3 {
		t.Errorf("acceptor got %v", got)
	}
}

func TestLongLineRefused(t *testing.T) {
	f := newFixture(t, Config{MaxLineLength: 1000})
	c := f.login(t, "acme", f.acmeToken)
	_, err := send(c, []string{"a@example.com"}, simpleMessage+strings.Repeat("z", 1200)+"\r\n", nil)
	wantSMTP(t, err, 550, smtp.EnhancedCode{5, 6, 0})
}

func TestChunking(t *testing.T) {
	f := newFixture(t, Config{})
	conn, err := tls.Dial("tcp", f.implicit, f.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	tp := &rawClient{textproto.NewConn(conn)}
	defer tp.Close()
	tp.read(t, 220)
	if line := tp.cmd(t, "EHLO bdat.test", 250); !strings.Contains(line, "CHUNKING") {
		t.Errorf("CHUNKING not advertised: %q", line)
	}
	tp.cmd(t, "AUTH PLAIN "+plainIR("acme", f.acmeToken), 235)
	tp.cmd(t, "MAIL FROM:<a@acme.example>", 250)
	tp.cmd(t, "RCPT TO:<b@example.com>", 250)
	// BDAT carries bytes as they are: no dot-stuffing, lines split across chunks.
	first, second := simpleMessage[:20], simpleMessage[20:]+".dot\r\n"
	fmt.Fprintf(tp.W, "BDAT %d\r\n%s", len(first), first)
	tp.W.Flush()
	tp.read(t, 250)
	fmt.Fprintf(tp.W, "BDAT %d LAST\r\n%s", len(second), second)
	tp.W.Flush()
	if line := tp.read(t, 250); line != "2.0.0 OK queued as msg-1" {
		t.Errorf("BDAT LAST: %q", line)
	}
	if got := string(f.acceptor.messages()[0].Raw); got != simpleMessage+".dot\r\n" {
		t.Errorf("raw %q", got)
	}
}

func TestCertificateReload(t *testing.T) {
	f := newFixture(t, Config{CertCheckInterval: 10 * time.Millisecond})
	serial := func() string {
		c, err := tls.Dial("tcp", f.implicit, f.tlsConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	renewed := f.ca.Leaf(t, smtptest.LeafOptions{})
	smtptest.WriteLeaf(t, filepath.Dir(f.certFile), renewed)
	deadline := time.Now().Add(5 * time.Second)
	for serial() != renewed.Leaf.SerialNumber.String() {
		if time.Now().After(deadline) {
			t.Fatalf("still serving %s (was %s), want %s", serial(), before, renewed.Leaf.SerialNumber)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A broken pair keeps the renewed certificate in service.
	time.Sleep(20 * time.Millisecond)
	if err := writeFileNewer(f.certFile, []byte("not a certificate")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := serial(); got != renewed.Leaf.SerialNumber.String() {
		t.Errorf("after a broken write: %s", got)
	}
}

func TestConnectionCap(t *testing.T) {
	f := newFixture(t, Config{MaxConnections: 2})
	f.dial(t)
	f.dial(t)
	for _, addr := range []string{f.startTLS} {
		tp := rawConn0(t, addr)
		line, err := tp.ReadLine()
		if err != nil || line != "421 4.7.0 Too many connections, try again later" {
			t.Errorf("third connection: %q %v", line, err)
		}
	}
	conn, err := tls.Dial("tcp", f.implicit, f.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if err != nil || line != "421 4.7.0 Too many connections, try again later\r\n" {
		t.Errorf("over the cap on implicit TLS: %q %v", line, err)
	}
	if !strings.Contains(scrape(t, f), `outbound_submission_connections_total{listener="submissions",result="over_capacity"} 1`) {
		t.Error("refusal not counted")
	}
}

// One tenant holding all the connections it may cannot take another
// tenant's: its next login is refused for now (454 4.7.0, so its mailer
// keeps the message), another tenant still logs in and sends, and a
// connection that closes gives its tenant the slot back.
func TestTenantConnectionCap(t *testing.T) {
	f := newFixture(t, Config{MaxConnections: 10, MaxTenantConnections: 2})
	first := f.login(t, "acme", f.acmeToken)
	f.login(t, "acme", f.sendToken)
	third := f.dial(t)
	wantSMTP(t, third.Auth(sasl.NewPlainClient("", "acme", f.acmeToken)), 454, smtp.EnhancedCode{4, 7, 0})
	if err := third.Mail("app@acme.example", nil); err == nil {
		t.Fatal("MAIL after a refused login was taken")
	}
	other := f.login(t, "globex", f.sendToken)
	if _, err := send(other, []string{"someone@example.com"}, simpleMessage, nil); err != nil {
		t.Fatalf("another tenant's message: %v", err)
	}

	first.Quit()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := f.dial(t)
		err := c.Auth(sasl.NewPlainClient("", "acme", f.acmeToken))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme's slot not given back after a connection closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(scrape(t, f), `outbound_submission_logins_total{result="tenant_busy"}`) {
		t.Error("the refused login is not counted as tenant_busy")
	}
	if !strings.Contains(f.log.String(), `"result":"tenant_busy"`) {
		t.Error("the refused login is not logged")
	}
}

// Unset, a tenant may hold a quarter of the connections, and at least one.
func TestTenantConnectionCapDefault(t *testing.T) {
	for total, want := range map[int]int{0: 25, 100: 25, 8: 2, 2: 1} {
		c := Config{MaxConnections: total}
		c.fillDefaults()
		if c.MaxTenantConnections != want {
			t.Errorf("with %d connections a tenant may hold %d, want %d", total, c.MaxTenantConnections, want)
		}
	}
}

func TestShutdownFinishesDataInProgress(t *testing.T) {
	f := newFixture(t, Config{})
	idle := f.login(t, "acme", f.acmeToken)
	busy := f.login(t, "acme", f.acmeToken)
	f.acceptor.gate, f.acceptor.entered = make(chan struct{}), make(chan struct{}, 1)
	result := make(chan error, 1)
	go func() {
		text, err := send(busy, []string{"a@example.com"}, simpleMessage, nil)
		if err == nil && text != "2.0.0 OK queued as msg-1" {
			err = fmt.Errorf("reply %q", text)
		}
		result <- err
	}()
	<-f.acceptor.entered
	f.stopped = true
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopped <- f.srv.Shutdown(ctx)
	}()
	// The idle session is told 421 and closed; no new connection is taken.
	for deadline := time.Now().Add(5 * time.Second); f.srv.Open() > 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", f.srv.Open())
		}
	}
	wantSMTP(t, idle.Noop(), 421, smtp.EnhancedCode{4, 4, 2})
	if f.srv.Ping(context.Background()) == nil {
		t.Error("ready while shutting down")
	}
	if c, err := net.DialTimeout("tcp", f.startTLS, time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("a new connection was greeted during shutdown")
		}
		c.Close()
	}
	select {
	case err := <-stopped:
		t.Fatalf("shutdown returned %v with a message in progress", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(f.acceptor.gate)
	if err := <-result; err != nil {
		t.Fatalf("message in progress: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestShutdownPastGraceCutsAndCancels(t *testing.T) {
	f := newFixture(t, Config{})
	busy := f.login(t, "acme", f.acmeToken)
	f.acceptor.gate, f.acceptor.entered = make(chan struct{}), make(chan struct{}, 1)
	result := make(chan error, 1)
	go func() {
		_, err := send(busy, []string{"a@example.com"}, simpleMessage, nil)
		result <- err
	}()
	<-f.acceptor.entered
	f.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-result; err == nil {
		t.Fatal("a cut message was answered 250")
	}
	if len(f.acceptor.messages()) != 0 {
		t.Error("the cancelled call still recorded the message")
	}
}

func TestReadiness(t *testing.T) {
	f := newFixture(t, Config{})
	if err := f.srv.Ping(context.Background()); err != nil {
		t.Fatalf("serving: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // a listener that fails at once
	if err := f.srv.Serve(ln); err == nil {
		t.Fatal("serve on a closed listener returned nil")
	}
	if err := f.srv.Ping(context.Background()); err == nil {
		t.Error("ready with a listener down")
	}
}

// writeFileNewer writes b to path with a modification time later than
// the one it has, even on file systems with coarse times.
func writeFileNewer(path string, b []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	later := fi.ModTime().Add(time.Second)
	return os.Chtimes(path, later, later)
}

func scrape(t *testing.T, f *fixture) string {
	t.Helper()
	rec := httptest.NewRecorder()
	f.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// rawClient speaks SMTP line by line, for what go-smtp's client will not
// do (AUTH in clear, BDAT).
type rawClient struct{ *textproto.Conn }

func rawConn0(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	tp := &rawClient{textproto.NewConn(conn)}
	t.Cleanup(func() { tp.Close() })
	return tp
}

func rawConn(t *testing.T, addr string) *rawClient {
	t.Helper()
	tp := rawConn0(t, addr)
	tp.read(t, 220)
	return tp
}

func (c *rawClient) read(t *testing.T, code int) string {
	t.Helper()
	_, msg, err := c.ReadResponse(code)
	if err != nil {
		t.Fatalf("want %d: %v", code, err)
	}
	return msg
}

func (c *rawClient) cmd(t *testing.T, line string, code int) string {
	t.Helper()
	if err := c.PrintfLine("%s", line); err != nil {
		t.Fatal(err)
	}
	return c.read(t, code)
}

func plainIR(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func TestTimeouts(t *testing.T) {
	f := newFixture(t, Config{CommandTimeout: 300 * time.Millisecond, DataTimeout: 3 * time.Second})
	c := f.login(t, "acme", f.acmeToken)
	if err := c.Mail("a@acme.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.com", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	// A body slower than the command timeout, within the data timeout.
	for _, part := range strings.SplitAfter(simpleMessage, "\r\n") {
		io.WriteString(w, part)
		time.Sleep(150 * time.Millisecond)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("slow body: %v", err)
	}
	// An idle client is told 421 after the command timeout.
	time.Sleep(500 * time.Millisecond)
	wantSMTP(t, c.Noop(), 421, smtp.EnhancedCode{4, 4, 2})
}

func TestLoginTimeout(t *testing.T) {
	f := newFixture(t, Config{LoginTimeout: 300 * time.Millisecond})
	lurker := f.dial(t)
	user := f.login(t, "acme", f.acmeToken)
	time.Sleep(600 * time.Millisecond)
	if err := lurker.Noop(); err == nil {
		t.Error("a connection that never logged in is still open")
	}
	if err := user.Noop(); err != nil {
		t.Errorf("a logged-in session was cut: %v", err)
	}
	if f.srv.Open() != 1 {
		t.Errorf("%d connections open, want 1", f.srv.Open())
	}
}
