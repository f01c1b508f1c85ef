package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestCheckDecisions(t *testing.T) {
	// Decisions only: nothing here is dialled.
	denied := map[string]string{
		"10.1.2.3":           "private",
		"172.16.0.1":         "private",
		"172.31.255.255":     "private",
		"192.168.1.1":        "private",
		"100.64.0.1":         "shared (CGNAT)",
		"127.0.0.1":          "loopback",
		"127.8.9.10":         "loopback",
		"169.254.169.254":    "metadata",
		"169.254.10.10":      "link-local",
		"0.0.0.0":            "unspecified",
		"192.0.2.10":         "documentation",
		"198.18.0.1":         "benchmarking",
		"224.0.0.1":          "multicast",
		"255.255.255.255":    "broadcast",
		"240.0.0.1":          "reserved",
		"::1":                "loopback",
		"::":                 "unspecified",
		"fc00::1":            "private",
		"fd12:3456::1":       "private",
		"fe80::1":            "link-local",
		"ff02::1":            "multicast",
		"2001:db8::1":        "documentation",
		"::ffff:127.0.0.1":   "loopback",
		"::ffff:10.0.0.1":    "private",
		"64:ff9b::a9fe:a9fe": "metadata (NAT64)",
		"2002:7f00:1::1":     "loopback (6to4)",
		"2001::1":            "Teredo",
		"fd00:ec2::254":      "metadata",
	}
	strict := &Guard{}
	for addr, reason := range denied {
		t.Run(addr, func(t *testing.T) {
			err := strict.Check(netip.MustParseAddr(addr))
			var de *DeniedError
			if !errors.As(err, &de) || !errors.Is(err, ErrDenied) {
				t.Fatalf("Check = %v, want denied", err)
			}
			if de.Reason != reason {
				t.Errorf("reason %q, want %q", de.Reason, reason)
			}
			if IsPublic(netip.MustParseAddr(addr)) {
				t.Error("IsPublic = true")
			}
		})
	}
	for _, addr := range []string{"8.8.8.8", "1.1.1.1", "142.250.27.108", "2606:4700::1111", "2a00:1450:4009::6d", "64:ff9b::808:808"} {
		if err := strict.Check(netip.MustParseAddr(addr)); err != nil || !IsPublic(netip.MustParseAddr(addr)) {
			t.Errorf("public %s refused: %v", addr, err)
		}
	}
	lax := &Guard{AllowPrivate: true}
	for _, addr := range []string{"127.0.0.1", "10.0.0.1", "::1", "169.254.169.254"} {
		if err := lax.Check(netip.MustParseAddr(addr)); err != nil {
			t.Errorf("AllowPrivate refused %s: %v", addr, err)
		}
	}
	for _, addr := range []string{"0.0.0.0", "224.0.0.1", "ff02::1", "255.255.255.255"} {
		if err := lax.Check(netip.MustParseAddr(addr)); err == nil {
			t.Errorf("AllowPrivate allowed unroutable %s", addr)
		}
	}
}

// loopbackOnly is a dialer that cannot reach anything but loopback, even
// if the guard were broken: the socket is refused before connect.
func loopbackOnly(t *testing.T, dialed *[]string, mu *sync.Mutex) *net.Dialer {
	return &net.Dialer{Timeout: 2 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		mu.Lock()
		*dialed = append(*dialed, address)
		mu.Unlock()
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			t.Errorf("test tried to dial non-loopback %s", address)
			return errors.New("test safety: non-loopback dial refused")
		}
		return nil
	}}
}

// listener counts the connections it accepts.
func listener(t *testing.T, network, addr string) (net.Listener, func() int) {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			c.Close()
		}
	}()
	return l, func() int {
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

type fixedResolver map[string][]netip.Addr

func (r fixedResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ips, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return ips, nil
}

func TestDialPath(t *testing.T) {
	l4, accepted4 := listener(t, "tcp", "127.0.0.1:0")
	portStr := ":" + strconv.Itoa(l4.Addr().(*net.TCPAddr).Port)
	resolver := fixedResolver{"mail.test.example": {netip.MustParseAddr("127.0.0.1")}}

	var mu sync.Mutex
	var dialed []string
	targets := []string{"127.0.0.1" + portStr, "localhost" + portStr, "mail.test.example" + portStr, "[::ffff:127.0.0.1]" + portStr}

	strict := &Guard{Resolver: resolver, Dialer: loopbackOnly(t, &dialed, &mu)}
	for _, target := range targets {
		if c, err := strict.DialContext(context.Background(), "tcp", target); !errors.Is(err, ErrDenied) {
			if c != nil {
				c.Close()
			}
			t.Errorf("dial %s = %v, want ErrDenied", target, err)
		}
	}
	if n := accepted4(); n != 0 {
		t.Fatalf("listener saw %d connections from refused dials", n)
	}
	if len(dialed) != 0 {
		t.Fatalf("refused dials reached the socket layer: %v", dialed)
	}

	lax := &Guard{AllowPrivate: true, Resolver: resolver, Dialer: loopbackOnly(t, &dialed, &mu)}
	for _, target := range []string{"127.0.0.1" + portStr, "mail.test.example" + portStr} {
		c, err := lax.DialContext(context.Background(), "tcp", target)
		if err != nil {
			t.Fatalf("AllowPrivate dial %s: %v", target, err)
		}
		c.Close()
	}
	if n := accepted4(); n != 2 {
		t.Errorf("listener saw %d connections, want 2", n)
	}
}

func TestDialIPv6Loopback(t *testing.T) {
	l6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback on this machine")
	}
	l6.Close()
	_, accepted := listener(t, "tcp", "[::1]:0")
	var mu sync.Mutex
	var dialed []string
	g := &Guard{Dialer: loopbackOnly(t, &dialed, &mu)}
	if _, err := g.DialContext(context.Background(), "tcp", "[::1]:25"); !errors.Is(err, ErrDenied) {
		t.Errorf("::1 = %v", err)
	}
	if accepted() != 0 || len(dialed) != 0 {
		t.Error("::1 dial reached the network")
	}
}

// rebinding answers differently on each lookup.
type rebinding struct {
	mu      sync.Mutex
	answers [][]netip.Addr
	calls   int
}

func (r *rebinding) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.answers[min(r.calls, len(r.answers)-1)]
	r.calls++
	return a, nil
}

func TestRebindingResolvesOnceAndDialsTheCheckedIP(t *testing.T) {
	l, accepted := listener(t, "tcp", "127.0.0.1:0")
	portStr := ":" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	loop := netip.MustParseAddr("127.0.0.1")
	public := netip.MustParseAddr("93.184.216.34")

	t.Run("private first, public later", func(t *testing.T) {
		r := &rebinding{answers: [][]netip.Addr{{loop}, {public}}}
		var mu sync.Mutex
		var dialed []string
		g := &Guard{Resolver: r, Dialer: loopbackOnly(t, &dialed, &mu)}
		if _, err := g.DialContext(context.Background(), "tcp", "rebind.test.example"+portStr); !errors.Is(err, ErrDenied) {
			t.Fatalf("err = %v, want denied", err)
		}
		if r.calls != 1 || len(dialed) != 0 || accepted() != 0 {
			t.Errorf("lookups %d, dialled %v", r.calls, dialed)
		}
	})
	t.Run("public first, private later", func(t *testing.T) {
		r := &rebinding{answers: [][]netip.Addr{{public}, {loop}}}
		var mu sync.Mutex
		var dialed []string
		// The safety Control refuses the public address before connect, so
		// the attempt shows which address the guard dialled.
		g := &Guard{Resolver: r, Dialer: &net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
			mu.Lock()
			dialed = append(dialed, address)
			mu.Unlock()
			return errors.New("test safety: refused before connect")
		}}}
		_, err := g.DialContext(context.Background(), "tcp", "rebind.test.example"+portStr)
		if err == nil {
			t.Fatal("dial succeeded")
		}
		if r.calls != 1 {
			t.Errorf("resolved %d times, want once", r.calls)
		}
		if len(dialed) != 1 || dialed[0] != "93.184.216.34"+portStr {
			t.Errorf("dialled %v, want the checked public address only", dialed)
		}
		if accepted() != 0 {
			t.Error("the private answer was dialled")
		}
	})
	t.Run("mixed answer refused", func(t *testing.T) {
		r := &rebinding{answers: [][]netip.Addr{{public, loop}}}
		g := &Guard{Resolver: r, Dialer: &net.Dialer{Control: func(string, string, syscall.RawConn) error {
			t.Error("dialled despite a private answer")
			return errors.New("refused")
		}}}
		if _, err := g.DialContext(context.Background(), "tcp", "mixed.test.example"+portStr); !errors.Is(err, ErrDenied) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestDNSErrors(t *testing.T) {
	g := &Guard{Resolver: fixedResolver{"empty.test.example": nil}}
	for _, host := range []string{"missing.test.example", "empty.test.example"} {
		_, err := g.DialContext(context.Background(), "tcp", host+":25")
		var de *DNSError
		if !errors.As(err, &de) || de.Host != host {
			t.Errorf("%s: err = %v, want *DNSError", host, err)
		}
	}
}

func itoa(n int) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(n)).String()[len("0.0.0.0:"):]
}
