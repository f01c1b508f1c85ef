package smtptest

import (
	"crypto/tls"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

var users = map[string]string{"acme@gmail.com": "abcdefghijklmnop"}

const (
	user = "acme@gmail.com"
	pass = "abcdefghijklmnop"
)

func TestImplicitTLSRecordsExactly(t *testing.T) {
	s := Start(t, Options{Users: users})
	c := mustLogin(t, s, user, pass)
	// A line starting with a dot is dot-stuffed by the client and must
	// come back unstuffed; no trailing dot, CRLF kept.
	body := "From: a@example.com\r\nSubject: hi\r\n\r\n.leading dot\r\nline two\r\n"
	to := []string{"b@example.com", "c@example.org"}
	if err := send(c, "a@example.com", to, body); err != nil {
		t.Fatal(err)
	}
	m := s.WaitMessages(t, 1, 5*time.Second)[0]
	if m.From != "a@example.com" || !slices.Equal(m.To, to) || string(m.Data) != body {
		t.Fatalf("recorded From %q To %q Data %q", m.From, m.To, m.Data)
	}
	if m.Username != user || m.ConnID != 1 || !m.TLS || m.At.IsZero() {
		t.Fatalf("recorded %+v", m)
	}
	if s.Auths() != 1 || s.AuthAttempts() != 1 {
		t.Fatalf("auths %d, attempts %d", s.Auths(), s.AuthAttempts())
	}
}

func TestWrongPasswordIs535(t *testing.T) {
	s := Start(t, Options{Users: users})
	c := mustClient(t, s)
	wantSMTP(t, c.Auth(sasl.NewPlainClient("", user, "wrong")), 535, smtp.EnhancedCode{5, 7, 8})
	c = mustClient(t, s)
	wantSMTP(t, c.Auth(sasl.NewPlainClient("", "nobody@gmail.com", pass)), 535, smtp.EnhancedCode{5, 7, 8})
	if s.Auths() != 0 || s.AuthAttempts() != 2 {
		t.Fatalf("auths %d, attempts %d", s.Auths(), s.AuthAttempts())
	}

	// The password is fixed on the server while it runs.
	s.SetUsers(map[string]string{user: "wrong"})
	mustLogin(t, s, user, "wrong")
}

func TestMailBeforeAuthIs530(t *testing.T) {
	s := Start(t, Options{Users: users})
	c := mustClient(t, s)
	wantSMTP(t, c.Mail("a@example.com", nil), 530, smtp.EnhancedCode{5, 7, 0})
}

func TestNoAuthAndAcceptAnyAuth(t *testing.T) {
	s := Start(t, Options{NoAuth: true})
	if err := send(mustClient(t, s), "a@example.com", []string{"b@example.com"}, "x\r\n"); err != nil {
		t.Fatalf("NoAuth: %v", err)
	}
	if m := s.WaitMessages(t, 1, 5*time.Second)[0]; m.Username != "" {
		t.Fatalf("username %q without AUTH", m.Username)
	}

	anyone := Start(t, Options{AcceptAnyAuth: true})
	mustLogin(t, anyone, "who@ever", "whatever")
}

func TestStartTLS(t *testing.T) {
	s := Start(t, Options{Users: users, Mode: STARTTLS})

	// Before the upgrade: STARTTLS offered, AUTH not.
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	clear := smtp.NewClient(conn)
	defer clear.Close()
	if err := clear.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := clear.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	if ok, _ := clear.Extension("AUTH"); ok {
		t.Fatal("AUTH offered before STARTTLS")
	}

	c := mustLogin(t, s, user, pass)
	if _, ok := c.TLSConnectionState(); !ok {
		t.Fatal("client not on TLS after STARTTLS")
	}
	if err := send(c, "a@example.com", []string{"b@example.com"}, "x\r\n"); err != nil {
		t.Fatal(err)
	}
	if m := s.WaitMessages(t, 1, 5*time.Second)[0]; !m.TLS || m.Username != user {
		t.Fatalf("recorded %+v", m)
	}
}

func TestClearTextAuth(t *testing.T) {
	for _, mode := range []Mode{Plain, STARTTLSNotOffered} {
		t.Run(mode.String(), func(t *testing.T) {
			refusing := Start(t, Options{Users: users, Mode: mode})
			c := mustClient(t, refusing)
			if err := c.Hello("localhost"); err != nil {
				t.Fatal(err)
			}
			for _, ext := range []string{"STARTTLS", "AUTH"} {
				if ok, _ := c.Extension(ext); ok {
					t.Errorf("%s offered in clear text", ext)
				}
			}
			wantSMTP(t, c.Auth(sasl.NewPlainClient("", user, pass)), 523, smtp.EnhancedCode{5, 7, 10})
			if refusing.AuthAttempts() != 1 || refusing.Auths() != 0 {
				t.Fatalf("attempts %d, auths %d", refusing.AuthAttempts(), refusing.Auths())
			}

			allowing := Start(t, Options{Users: users, Mode: mode, AllowInsecureAuth: true})
			c = mustLogin(t, allowing, user, pass)
			if err := send(c, "a@example.com", []string{"b@example.com"}, "x\r\n"); err != nil {
				t.Fatal(err)
			}
			if m := allowing.WaitMessages(t, 1, 5*time.Second)[0]; m.TLS {
				t.Fatal("plain-text message recorded as TLS")
			}
		})
	}
}

func TestLoginMechanism(t *testing.T) {
	s := Start(t, Options{Users: users, Mechanisms: []string{sasl.Login}})
	c := mustClient(t, s)
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	if !c.SupportsAuth(sasl.Login) || c.SupportsAuth(sasl.Plain) {
		t.Fatal("want LOGIN offered and PLAIN not")
	}
	wantSMTP(t, c.Auth(sasl.NewPlainClient("", user, pass)), 504, smtp.EnhancedCode{5, 7, 4})
	c = mustClient(t, s)
	wantSMTP(t, c.Auth(sasl.NewLoginClient(user, "wrong")), 535, smtp.EnhancedCode{5, 7, 8})
	c = mustClient(t, s)
	if err := c.Auth(sasl.NewLoginClient(user, pass)); err != nil {
		t.Fatal(err)
	}
	if err := send(c, "a@example.com", []string{"b@example.com"}, "x\r\n"); err != nil {
		t.Fatal(err)
	}
	if m := s.WaitMessages(t, 1, 5*time.Second)[0]; m.Username != user {
		t.Fatalf("recorded %+v", m)
	}
}

func TestConnectionCounting(t *testing.T) {
	s := Start(t, Options{Users: users})
	c := mustLogin(t, s, user, pass)
	for range 2 {
		if err := send(c, "a@example.com", []string{"b@example.com"}, "x\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	if s.Connections() != 1 || s.Auths() != 1 || len(s.Messages()) != 2 {
		t.Fatalf("two messages on one connection: connections %d, auths %d, messages %d",
			s.Connections(), s.Auths(), len(s.Messages()))
	}

	s2 := Start(t, Options{Users: users})
	mustClient(t, s2).Noop()
	mustClient(t, s2).Noop()
	if s2.Connections() != 2 || s2.OpenConnections() != 2 {
		t.Fatalf("two dials: connections %d, open %d", s2.Connections(), s2.OpenConnections())
	}
	if ids := []int{s.Messages()[0].ConnID, s.Messages()[1].ConnID}; ids[0] != 1 || ids[1] != 1 {
		t.Fatalf("conn ids %v", ids)
	}
}

func TestDropConnections(t *testing.T) {
	s := Start(t, Options{Users: users})
	c := mustLogin(t, s, user, pass)
	s.DropConnections()
	wantNetwork(t, c.Noop())
	waitFor(t, "no open connections", func() bool { return s.OpenConnections() == 0 })

	// The server keeps accepting.
	mustLogin(t, s, user, pass)
	if s.Connections() != 2 || s.OpenConnections() != 1 {
		t.Fatalf("connections %d, open %d", s.Connections(), s.OpenConnections())
	}
}

func TestWaitMessages(t *testing.T) {
	s := Start(t, Options{Users: users})
	c := mustLogin(t, s, user, pass)
	errc := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		errc <- send(c, "a@example.com", []string{"b@example.com"}, "x\r\n")
	}()
	if got := s.WaitMessages(t, 1, 5*time.Second); len(got) != 1 {
		t.Fatalf("got %d messages", len(got))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	fake := &fakeTB{TB: t}
	if got := s.WaitMessages(fake, 2, 50*time.Millisecond); got != nil || fake.failure == "" {
		t.Fatalf("WaitMessages short of n: returned %v, failure %q", got, fake.failure)
	}
}

func TestCloseEndsStalledConnections(t *testing.T) {
	s := Start(t, Options{Users: users, Hooks: Hooks{Stall: func(string) time.Duration { return time.Hour }}})
	conn, err := tls.Dial("tcp", s.Addr(), clientTLS(s)) // then stalls before the greeting
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitFor(t, "the connection to be accepted", func() bool { return s.Connections() == 1 })

	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	s.Close() // a second call is harmless
	if _, err := net.Dial("tcp", s.Addr()); err == nil {
		t.Fatal("still listening after Close")
	}
}

func TestConcurrentClients(t *testing.T) {
	s := Start(t, Options{Users: users})
	const n = 8
	errc := make(chan error, n)
	for range n {
		c := mustLogin(t, s, user, pass)
		go func() { errc <- send(c, "a@example.com", []string{"b@example.com"}, "x\r\n") }()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if got := len(s.WaitMessages(t, n, 5*time.Second)); got != n || s.Connections() != n {
		t.Fatalf("messages %d, connections %d", got, s.Connections())
	}
}

// Hellos counts every EHLO, the one after STARTTLS too, and none for the
// other commands: go-smtp's client says EHLO again after its Reset.
func TestHellosCounted(t *testing.T) {
	for _, mode := range []Mode{ImplicitTLS, STARTTLS} {
		t.Run(mode.String(), func(t *testing.T) {
			s := Start(t, Options{Users: users, Mode: mode})
			c := mustLogin(t, s, user, pass)
			want := 1
			if mode == STARTTLS {
				want = 2 // before and after the upgrade
			}
			for range 2 {
				if err := send(c, "a@example.com", []string{"b@example.com"}, "x\r\n"); err != nil {
					t.Fatal(err)
				}
			}
			if got := s.Hellos(); got != want {
				t.Fatalf("%d hellos after login and two messages, want %d", got, want)
			}
			if err := c.Reset(); err != nil {
				t.Fatal(err)
			}
			if err := c.Noop(); err != nil {
				t.Fatal(err)
			}
			if got := s.Hellos(); got != want+1 {
				t.Fatalf("%d hellos after RSET and NOOP, want %d", got, want+1)
			}
		})
	}
}
