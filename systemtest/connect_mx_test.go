package systemtest

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer is a small DNS server on loopback UDP answering MX questions
// from a table: a name it has no entry for does not exist, a name mapped
// to nil fails (SERVFAIL), and silent names are never answered.
type dnsServer struct {
	conn   net.PacketConn
	mx     map[string][]string // fully qualified name: exchanger hosts
	silent map[string]bool
}

func startDNS(t *testing.T, mx map[string][]string, silent ...string) *dnsServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{conn: conn, mx: mx, silent: map[string]bool{}}
	for _, n := range silent {
		s.silent[n] = true
	}
	t.Cleanup(func() { conn.Close() })
	go s.serve()
	return s
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		if reply, ok := s.answer(buf[:n]); ok {
			s.conn.WriteTo(reply, from)
		}
	}
}

func (s *dnsServer) answer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(q.Name.String())
	if s.silent[name] {
		return nil, false
	}
	hosts, found := s.mx[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	switch {
	case !found:
		rh.RCode = dnsmessage.RCodeNameError
	case hosts == nil:
		rh.RCode = dnsmessage.RCodeServerFailure
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if q.Type == dnsmessage.TypeMX {
		for i, host := range hosts {
			b.MXResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
				dnsmessage.MXResource{Pref: uint16(10 * (i + 1)), MX: dnsmessage.MustNewName(host)})
		}
	}
	reply, err := b.Finish()
	return reply, err == nil
}

// resolver asks only this server.
func (s *dnsServer) resolver() *net.Resolver {
	addr := s.conn.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// mxLoopback answers host lookups as loopbackResolver does and MX lookups
// from a DNS server, as one resolver handed to app.WithResolver.
type mxLoopback struct {
	loopbackResolver
	dns *net.Resolver
}

func (r mxLoopback) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return r.dns.LookupMX(ctx, name)
}

// A typed address on a company's own domain suggests the provider its MX
// records point at; a domain whose lookup fails or never answers leaves
// the person to fill in another server, without an error.
func TestConnectPageSuggestsByMX(t *testing.T) {
	dns := startDNS(t, map[string][]string{
		"acme-corp.example.":  {"aspmx.l.google.com.", "alt1.aspmx.l.google.com."},
		"acme-trade.example.": {"acme-trade-example.mail.protection.outlook.com."},
		"acme-own.example.":   {"mx.acme-own.example."},
		"broken.example.":     nil,
	}, "slow.example.")
	rig := newConnectRig(t, func(o *options) {
		o.resolver = mxLoopback{loopbackResolver: loopbackResolver{"smtp.gmail.com": true}, dns: dns.resolver()}
	})
	link := rig.link(t, "")
	c := newPageClient(t)
	if res, body := c.get(link); res.StatusCode != http.StatusOK || c.csrf == "" {
		t.Fatalf("GET: %d %s", res.StatusCode, body)
	}

	for email, want := range map[string][]string{
		"someone@acme-corp.example":  {"Your Google Workspace account", `value="google"`, `value="smtp.gmail.com"`},
		"someone@Acme-Trade.example": {"Your Microsoft 365 account", `value="microsoft365"`, `value="smtp.office365.com"`},
	} {
		res, body := c.post(link, "action", "next", "email", email)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", email, res.StatusCode, body)
			continue
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: the page lacks %s:\n%s", email, w, body)
			}
		}
	}

	// Unknown exchangers, no such domain, a failing server and one that
	// never answers: no suggestion, and no error either.
	for _, email := range []string{"someone@acme-own.example", "someone@nowhere.example", "someone@broken.example", "someone@slow.example"} {
		start := time.Now()
		res, body := c.post(link, "action", "next", "email", email)
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("%s: the page took %v", email, took)
		}
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "Your Another server account") && !strings.Contains(body, `value="other"`) ||
			strings.Contains(body, `id="error-summary"`) || strings.Contains(body, `value="smtp.`) {
			t.Errorf("%s: %d %s", email, res.StatusCode, body)
		}
	}
}
