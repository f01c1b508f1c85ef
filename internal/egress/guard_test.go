package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Test safety: every Guard that dials in these tests is built by newGuard,
// whose dialer refuses any non-loopback address in Control, which runs
// after the socket is created and before connect. Even a broken guard
// cannot send a packet off this machine.

// dialLog records the addresses that reached the socket layer.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
}

func (l *dialLog) add(a string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs = append(l.addrs, a)
}

func (l *dialLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.addrs...)
}

// safeDialer records each address and refuses any that is not loopback.
func safeDialer(log *dialLog) *net.Dialer {
	return &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			log.add(address)
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !ap.Addr().Unmap().IsLoopback() {
				return errors.New("test safety: refused non-loopback " + address + " before connect")
			}
			return nil
		},
	}
}

func newGuard(allowPrivate bool, r Resolver) (*Guard, *dialLog) {
	log := &dialLog{}
	return &Guard{AllowPrivate: allowPrivate, Resolver: r, Dialer: safeDialer(log)}, log
}

// fakeResolver answers from a table. A host with several answers gives the
// next one on each lookup (the last one repeats), to play DNS rebinding.
type fakeResolver struct {
	answers map[string][][]netip.Addr
	errs    map[string]error

	mu       sync.Mutex
	calls    map[string]int
	networks []string
}

func resolverOf(answers map[string][][]netip.Addr) *fakeResolver {
	return &fakeResolver{answers: answers}
}

func (r *fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	n := r.calls[host]
	r.calls[host]++
	r.networks = append(r.networks, network)
	if err := r.errs[host]; err != nil {
		return nil, err
	}
	a, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return a[min(n, len(a)-1)], nil
}

func (r *fakeResolver) lookups(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

// server is a loopback listener that counts the connections it accepts.
type server struct {
	port     string
	accepted atomic.Int32
}

func listen(t *testing.T, addr string) *server {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	s := &server{port: strconv.Itoa(l.Addr().(*net.TCPAddr).Port)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			c.Close()
		}
	}()
	return s
}

// listenIPv6 is listen on [::1], or a skip where the machine has no IPv6
// loopback (some containers).
func listenIPv6(t *testing.T) *server {
	t.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	l.Close()
	return listen(t, "[::1]:0")
}

// settled reports the accepted count once in-flight accepts have landed.
func (s *server) settled() int {
	time.Sleep(50 * time.Millisecond)
	return int(s.accepted.Load())
}

func (s *server) waitFor(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if int(s.accepted.Load()) >= n {
			return
		}
	}
	t.Fatalf("listener accepted %d connections, want %d", s.accepted.Load(), n)
}

var (
	loop4  = netip.MustParseAddr("127.0.0.1")
	loop4b = netip.MustParseAddr("127.0.0.2")
	loop6  = netip.MustParseAddr("::1")
	// A real public address. Tests that hand it to a guard rely on
	// safeDialer to stop it before connect.
	public = netip.MustParseAddr("93.184.215.14")
)

func addrs(a ...netip.Addr) [][]netip.Addr { return [][]netip.Addr{a} }

func TestDialLoopbackRefusedByDefault(t *testing.T) {
	s := listen(t, "127.0.0.1:0")
	r := resolverOf(map[string][][]netip.Addr{
		"loop.test.example":   addrs(loop4),
		"mapped.test.example": addrs(netip.MustParseAddr("::ffff:127.0.0.1")),
		"zero.test.example":   addrs(netip.IPv4Unspecified()),
	})
	tests := []struct {
		name, host string
		resolves   bool
	}{
		{"IPv4 literal", "127.0.0.1", false},
		{"other loopback literal", "127.0.0.2", false},
		{"mapped literal", "[::ffff:127.0.0.1]", false},
		{"unspecified literal", "0.0.0.0", false},
		{"localhost", "localhost", false},
		{"localhost upper case, rooted", "LocalHost.", false},
		{"subdomain of localhost", "mail.localhost", false},
		{"name answering loopback", "loop.test.example", true},
		{"name answering mapped loopback", "mapped.test.example", true},
		{"name answering unspecified", "zero.test.example", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, log := newGuard(false, r)
			c, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort(trimBrackets(tt.host), s.port))
			if c != nil {
				c.Close()
			}
			var de *DeniedError
			if !errors.As(err, &de) || !errors.Is(err, ErrDenied) {
				t.Fatalf("err = %v, want a *DeniedError", err)
			}
			if de.Host != trimBrackets(tt.host) {
				t.Errorf("DeniedError.Host = %q", de.Host)
			}
			if got := r.lookups(tt.host); tt.resolves != (got == 1) || got > 1 {
				t.Errorf("%d lookups", got)
			}
			if d := log.get(); len(d) != 0 {
				t.Errorf("a refused dial reached the socket layer: %v", d)
			}
		})
	}
	if n := s.settled(); n != 0 {
		t.Fatalf("listener saw %d connections from refused dials", n)
	}
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

func TestDialIPv6LoopbackRefusedByDefault(t *testing.T) {
	s := listenIPv6(t)
	r := resolverOf(map[string][][]netip.Addr{"loop6.test.example": addrs(loop6)})
	for _, host := range []string{"::1", "loop6.test.example"} {
		t.Run(host, func(t *testing.T) {
			g, log := newGuard(false, r)
			if _, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort(host, s.port)); !errors.Is(err, ErrDenied) {
				t.Fatalf("err = %v, want ErrDenied", err)
			}
			if d := log.get(); len(d) != 0 {
				t.Errorf("reached the socket layer: %v", d)
			}
		})
	}
	if n := s.settled(); n != 0 {
		t.Fatalf("listener saw %d connections", n)
	}
}

func TestDialLoopbackAllowedWithPrivate(t *testing.T) {
	s := listen(t, "127.0.0.1:0")
	r := resolverOf(map[string][][]netip.Addr{
		"localhost":         addrs(loop4), // not the system's: tests set every answer
		"loop.test.example": addrs(loop4),
	})
	for i, host := range []string{"127.0.0.1", "::ffff:127.0.0.1", "localhost", "loop.test.example"} {
		t.Run(host, func(t *testing.T) {
			g, log := newGuard(true, r)
			c, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort(host, s.port))
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			c.Close()
			s.waitFor(t, i+1)
			if d := log.get(); len(d) != 1 || d[0] != "127.0.0.1:"+s.port {
				t.Errorf("dialled %v, want exactly 127.0.0.1:%s", d, s.port)
			}
		})
	}
}

func TestDialIPv6LoopbackAllowedWithPrivate(t *testing.T) {
	s := listenIPv6(t)
	g, log := newGuard(true, nil)
	c, err := g.DialContext(context.Background(), "tcp", "[::1]:"+s.port)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
	s.waitFor(t, 1)
	if d := log.get(); len(d) != 1 || d[0] != "[::1]:"+s.port {
		t.Errorf("dialled %v", d)
	}
}

func TestDialRefusesMixedAnswers(t *testing.T) {
	s := listen(t, "127.0.0.1:0")
	tests := []struct {
		name   string
		answer []netip.Addr
	}{
		{"public then loopback", []netip.Addr{public, loop4}},
		{"loopback then public", []netip.Addr{loop4, public}},
		{"public then metadata", []netip.Addr{public, netip.MustParseAddr("169.254.169.254")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, log := newGuard(false, resolverOf(map[string][][]netip.Addr{"mixed.test.example": {tt.answer}}))
			_, err := g.DialContext(context.Background(), "tcp", "mixed.test.example:"+s.port)
			var de *DeniedError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DeniedError", err)
			}
			if de.Host != "mixed.test.example" || de.IP == public {
				t.Errorf("denied %s / %s", de.Host, de.IP)
			}
			if d := log.get(); len(d) != 0 {
				t.Errorf("dialled %v despite a non-public answer", d)
			}
		})
	}
	if n := s.settled(); n != 0 {
		t.Fatalf("listener saw %d connections", n)
	}
}

func TestDialResolvesOnceAndDialsTheCheckedAddress(t *testing.T) {
	s := listen(t, "127.0.0.1:0")
	const host = "rebind.test.example"

	t.Run("loopback first, public later: refused", func(t *testing.T) {
		r := resolverOf(map[string][][]netip.Addr{host: {{loop4}, {public}}})
		g, log := newGuard(false, r)
		if _, err := g.DialContext(context.Background(), "tcp", host+":"+s.port); !errors.Is(err, ErrDenied) {
			t.Fatalf("err = %v, want ErrDenied", err)
		}
		if n := r.lookups(host); n != 1 {
			t.Errorf("%d lookups, want 1", n)
		}
		if d := log.get(); len(d) != 0 {
			t.Errorf("dialled %v", d)
		}
	})

	t.Run("public first, loopback later: the public address is dialled", func(t *testing.T) {
		r := resolverOf(map[string][][]netip.Addr{host: {{public}, {loop4}}})
		g, log := newGuard(false, r)
		_, err := g.DialContext(context.Background(), "tcp", host+":"+s.port)
		// safeDialer stops the public address before connect, so the dial
		// fails; what matters is which address it tried.
		if err == nil || errors.Is(err, ErrDenied) {
			t.Fatalf("err = %v, want the safety dialer's refusal", err)
		}
		if n := r.lookups(host); n != 1 {
			t.Errorf("%d lookups, want 1", n)
		}
		if d := log.get(); len(d) != 1 || d[0] != public.String()+":"+s.port {
			t.Errorf("dialled %v, want only the checked %s:%s", d, public, s.port)
		}
	})

	t.Run("allowed, answer changes: the first answer is dialled", func(t *testing.T) {
		// Only 127.0.0.1 has a listener, so a connection proves which
		// answer was used.
		r := resolverOf(map[string][][]netip.Addr{host: {{loop4}, {loop4b}}})
		g, log := newGuard(true, r)
		c, err := g.DialContext(context.Background(), "tcp", host+":"+s.port)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.Close()
		if n := r.lookups(host); n != 1 {
			t.Errorf("%d lookups, want 1", n)
		}
		if d := log.get(); len(d) != 1 || d[0] != "127.0.0.1:"+s.port {
			t.Errorf("dialled %v", d)
		}
		s.waitFor(t, 1)
	})

	t.Run("lookup asks for both families", func(t *testing.T) {
		r := resolverOf(map[string][][]netip.Addr{host: addrs(loop4)})
		g, _ := newGuard(false, r)
		g.DialContext(context.Background(), "tcp", host+":"+s.port)
		if len(r.networks) != 1 || r.networks[0] != "ip" {
			t.Errorf("lookups with %v, want [ip]", r.networks)
		}
	})
}

func TestDialTriesAddressesInOrder(t *testing.T) {
	// Nothing listens on 127.0.0.2 or 127.0.0.3 at s's port, so those
	// dials are refused by the kernel.
	s := listen(t, "127.0.0.1:0")
	loop4c := netip.MustParseAddr("127.0.0.3")
	tests := []struct {
		name    string
		answer  []netip.Addr
		wantOK  bool
		dialled []netip.Addr
	}{
		{"second answers", []netip.Addr{loop4b, loop4}, true, []netip.Addr{loop4b, loop4}},
		{"first answers", []netip.Addr{loop4, loop4b}, true, []netip.Addr{loop4}},
		{"none answers", []netip.Addr{loop4b, loop4c}, false, []netip.Addr{loop4b, loop4c}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, log := newGuard(true, resolverOf(map[string][][]netip.Addr{"multi.test.example": {tt.answer}}))
			c, err := g.DialContext(context.Background(), "tcp", "multi.test.example:"+s.port)
			if tt.wantOK != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if c != nil {
				c.Close()
			}
			if !tt.wantOK {
				// The last attempt's error is returned.
				var op *net.OpError
				if !errors.As(err, &op) || op.Addr == nil || op.Addr.String() != loop4c.String()+":"+s.port {
					t.Errorf("err = %v, want the error from %s", err, loop4c)
				}
			}
			var want []string
			for _, ip := range tt.dialled {
				want = append(want, ip.String()+":"+s.port)
			}
			if d := log.get(); !equal(d, want) {
				t.Errorf("dialled %v, want %v", d, want)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDialKeepsNetworkFamily(t *testing.T) {
	s := listen(t, "127.0.0.1:0")
	r := resolverOf(map[string][][]netip.Addr{
		"both.test.example": addrs(loop6, loop4),
		"v4.test.example":   addrs(loop4),
	})
	g, log := newGuard(true, r)
	c, err := g.DialContext(context.Background(), "tcp4", "both.test.example:"+s.port)
	if err != nil {
		t.Fatalf("tcp4: %v", err)
	}
	c.Close()
	if d := log.get(); len(d) != 1 || d[0] != "127.0.0.1:"+s.port {
		t.Errorf("tcp4 dialled %v", d)
	}

	g, log = newGuard(true, r)
	_, err = g.DialContext(context.Background(), "tcp6", "v4.test.example:"+s.port)
	var ae *net.AddrError
	if !errors.As(err, &ae) {
		t.Errorf("tcp6 to an IPv4-only name: err = %v, want *net.AddrError", err)
	}
	if d := log.get(); len(d) != 0 {
		t.Errorf("tcp6 dialled %v", d)
	}
}

func TestDialBadAddress(t *testing.T) {
	tests := []struct {
		address string
		denied  bool // a *DeniedError; otherwise a plain address error
	}{
		{"mail.test.example", false},
		{":25", false},
		{"mail.test.example:", false},
		{"mail.test.example:0", false},
		{"mail.test.example:65536", false},
		{"mail.test.example:smtp", false},
		{"[fe80::1%lo]:25", true},
		{"[::1%lo]:25", true},
	}
	r := resolverOf(map[string][][]netip.Addr{"mail.test.example": addrs(loop4)})
	for _, allow := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(strconv.FormatBool(allow)+"/"+tt.address, func(t *testing.T) {
				g, log := newGuard(allow, r)
				_, err := g.DialContext(context.Background(), "tcp", tt.address)
				if err == nil || errors.Is(err, ErrDenied) != tt.denied {
					t.Errorf("err = %v, denied want %v", err, tt.denied)
				}
				if d := log.get(); len(d) != 0 {
					t.Errorf("dialled %v", d)
				}
			})
		}
	}
	if n := r.lookups("mail.test.example"); n != 0 {
		t.Errorf("%d lookups for malformed addresses", n)
	}
}

func TestDialDNSErrors(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	r := &fakeResolver{
		answers: map[string][][]netip.Addr{"empty.test.example": {nil}},
		errs:    map[string]error{"cancel.test.example": context.Canceled},
	}
	tests := []struct {
		host string
		ctx  context.Context
		is   error
	}{
		{"missing.test.example", context.Background(), nil},
		{"empty.test.example", context.Background(), ErrNoAddresses},
		{"cancel.test.example", cancelled, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			g, log := newGuard(false, r)
			_, err := g.DialContext(tt.ctx, "tcp", tt.host+":25")
			var de *DNSError
			if !errors.As(err, &de) || de.Host != tt.host {
				t.Fatalf("err = %v, want a *DNSError for %s", err, tt.host)
			}
			if errors.Is(err, ErrDenied) {
				t.Error("a lookup failure matches ErrDenied")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want it to match %v", err, tt.is)
			}
			var nde *net.DNSError
			if tt.is == nil && !errors.As(err, &nde) {
				t.Errorf("the resolver's *net.DNSError is not reachable: %v", err)
			}
			if d := log.get(); len(d) != 0 {
				t.Errorf("dialled %v", d)
			}
		})
	}
}

func TestDialDoesNotModifyResolverAnswer(t *testing.T) {
	s := listen(t, "127.0.0.1:0")
	answer := []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.1")}
	g, _ := newGuard(true, resolverOf(map[string][][]netip.Addr{"cached.test.example": {answer}}))
	c, err := g.DialContext(context.Background(), "tcp", "cached.test.example:"+s.port)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !answer[0].Is4In6() {
		t.Errorf("the resolver's slice was rewritten to %s", answer[0])
	}
}

func TestAttemptDeadline(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		remaining time.Duration
		left      int
		want      time.Duration
	}{
		{"last address gets everything", 30 * time.Second, 1, 30 * time.Second},
		{"equal share", 30 * time.Second, 3, 10 * time.Second},
		{"at least the minimum", 3 * time.Second, 3, minAttempt},
		{"never past the deadline", time.Second, 3, time.Second},
		{"deadline passed", -time.Second, 2, -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := attemptDeadline(now, now.Add(tt.remaining), tt.left)
			if got.Sub(now) != tt.want {
				t.Errorf("attempt gets %s, want %s", got.Sub(now), tt.want)
			}
		})
	}
}
