// Package egress decides which addresses Outbound may connect to on a
// tenant's behalf. Tenant-entered hosts (SMTP servers, later webhook and
// token URLs) are user input: by default only public unicast addresses are
// dialled. The guard resolves the name once, checks every answer, and dials
// exactly the checked address, so a DNS answer that changes between check
// and dial (rebinding) cannot slip through.
package egress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ErrDenied is matched by every *DeniedError.
var ErrDenied = errors.New("egress denied")

// DeniedError names the address the guard refused and why.
type DeniedError struct {
	Host   string
	IP     netip.Addr
	Reason string
}

func (e *DeniedError) Error() string {
	if e.IP.IsValid() {
		return fmt.Sprintf("egress: %s resolves to %s, a %s address, which is not allowed", e.Host, e.IP, e.Reason)
	}
	return fmt.Sprintf("egress: %s is a %s host, which is not allowed", e.Host, e.Reason)
}

func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// DNSError is a failed or empty lookup.
type DNSError struct {
	Host string
	Err  error
}

func (e *DNSError) Error() string { return fmt.Sprintf("egress: resolve %s: %v", e.Host, e.Err) }
func (e *DNSError) Unwrap() error { return e.Err }

// Resolver is satisfied by *net.Resolver.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard dials only what its policy allows.
type Guard struct {
	// AllowPrivate permits loopback, private, link-local and the other
	// non-public unicast ranges (OUTBOUND_ALLOW_PRIVATE_NETWORKS).
	AllowPrivate bool
	Resolver     Resolver    // nil: net.DefaultResolver
	Dialer       *net.Dialer // nil: a zero net.Dialer
}

// Check reports whether ip may be dialled: nil or a *DeniedError.
func (g *Guard) Check(ip netip.Addr) error {
	ip = ip.Unmap()
	reason := classify(ip)
	switch {
	case reason == "":
		return nil
	case g.AllowPrivate && !unroutable(reason):
		return nil
	}
	return &DeniedError{Host: ip.String(), IP: ip, Reason: reason}
}

// IsPublic reports whether ip is a globally routable unicast address.
func IsPublic(ip netip.Addr) bool { return classify(ip.Unmap()) == "" }

// DialContext resolves the host of address, refuses the dial when any of its
// addresses is not allowed, and otherwise dials the checked addresses in
// order until one answers.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("egress: bad port in %q", address)
	}
	ips, err := g.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		if err := g.Check(ip); err != nil {
			var de *DeniedError
			errors.As(err, &de)
			de.Host = host
			return nil, de
		}
	}
	d := g.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	var lastErr error
	for _, ip := range ips {
		conn, err := d.DialContext(ctx, network, netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// resolve turns host into addresses: a literal as itself, a name by one
// lookup. "localhost" names are refused without a lookup unless private
// addresses are allowed.
func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if strings.Contains(host, "%") {
		return nil, &DeniedError{Host: host, Reason: "zoned IPv6"}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if !g.AllowPrivate && (name == "localhost" || strings.HasSuffix(name, ".localhost")) {
		return nil, &DeniedError{Host: host, Reason: "loopback"}
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, &DNSError{Host: host, Err: err}
	}
	if len(ips) == 0 {
		return nil, &DNSError{Host: host, Err: errors.New("no addresses")}
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}

// HTTPClient is an HTTP client that dials only through the guard, for
// user-entered URLs (OAuth2 token endpoints, webhooks). It verifies
// certificates against roots (nil: the system's) and follows no redirects:
// a redirect could point past what the user entered.
func (g *Guard) HTTPClient(roots *x509.CertPool, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         g.DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     time.Minute,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
