// Package egress decides which addresses Outbound may connect to on a
// tenant's behalf, and dials only those.
//
// Tenant-entered hosts (SMTP servers, webhook URLs, OAuth2 token endpoints)
// are user input. Unless private networks are allowed
// (OUTBOUND_ALLOW_PRIVATE_NETWORKS), a Guard connects only to public unicast
// addresses. It resolves a name once, checks every answer, and dials exactly
// the addresses it checked, so a DNS answer that changes between check and
// dial (DNS rebinding) cannot redirect the connection. The operator's own
// default relay is trusted and is dialled without a Guard.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Resolver looks up the addresses of a host. *net.Resolver satisfies it;
// tests point names wherever they like with their own.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard dials only what its policy allows. The zero Guard is the strict
// default: public addresses only, system resolver, plain net.Dialer. A
// Guard holds no state and is safe for concurrent use.
type Guard struct {
	// AllowPrivate permits loopback, private, shared, documentation and
	// other reserved unicast addresses. Link-local, cloud metadata,
	// unspecified, multicast and broadcast addresses stay refused.
	AllowPrivate bool
	Resolver     Resolver    // nil: net.DefaultResolver
	Dialer       *net.Dialer // nil: &net.Dialer{}; Timeout bounds the whole dial
}

// minAttempt is the least time one address gets when a name has several,
// as in the standard library's dialer.
const minAttempt = 2 * time.Second

// DialContext connects to address ("host:port") if the guard's policy
// allows it. host may be an IP literal or a name; a name is resolved once,
// for both families. If any resolved address is refused the whole dial is
// refused with a *DeniedError: a name that mixes public and private answers
// is not trusted. Otherwise the checked addresses matching network's family
// are dialled in order, as IP literals, and the first connection is
// returned, or the last error. A failed or empty lookup is a *DNSError.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := splitHostPort(address)
	if err != nil {
		return nil, err
	}
	ips, err := g.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		if err := g.Check(ip); err != nil {
			var de *DeniedError
			if errors.As(err, &de) {
				de.Host = host
			}
			return nil, err
		}
	}
	return g.dial(ctx, network, host, ips, port)
}

func splitHostPort(address string) (string, uint16, error) {
	host, p, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, fmt.Errorf("egress: %w", err)
	}
	if host == "" {
		// The standard dialer would take an empty host as the local system.
		return "", 0, fmt.Errorf("egress: %w", &net.AddrError{Err: "missing host", Addr: address})
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("egress: %w", &net.AddrError{Err: "invalid port", Addr: address})
	}
	return host, uint16(port), nil
}

// resolve turns host into the addresses to check and dial, unmapped: an IP
// literal as itself, a name by exactly one lookup.
func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if strings.Contains(host, "%") {
		// A zone picks an interface, which only makes sense on a local link.
		return nil, &DeniedError{Host: host, Reason: "zoned IPv6"}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	if !g.AllowPrivate && isLocalhost(host) {
		// RFC 6761 §6.3: these names are loopback, whatever DNS says.
		return nil, &DeniedError{Host: host, Reason: "loopback"}
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	found, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, &DNSError{Host: host, Err: err}
	}
	if len(found) == 0 {
		return nil, &DNSError{Host: host, Err: ErrNoAddresses}
	}
	// A fresh slice: the resolver's may be shared (a cache).
	ips := make([]netip.Addr, len(found))
	for i, ip := range found {
		ips[i] = ip.Unmap()
	}
	return ips, nil
}

func isLocalhost(host string) bool {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
}

// dial tries the checked addresses in order. When the dial has a deadline
// and several addresses, each attempt gets a share of what remains (at
// least minAttempt) so one silent address cannot use up the whole budget.
func (g *Guard) dial(ctx context.Context, network, host string, ips []netip.Addr, port uint16) (net.Conn, error) {
	d := g.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	ips = sameFamily(network, ips)
	if len(ips) == 0 {
		return nil, fmt.Errorf("egress: %w", &net.AddrError{Err: "no suitable address found", Addr: host})
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	var lastErr error
	for i, ip := range ips {
		attemptCtx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok {
			attemptCtx, cancel = context.WithDeadline(ctx, attemptDeadline(time.Now(), deadline, len(ips)-i))
		}
		conn, err := d.DialContext(attemptCtx, network, netip.AddrPortFrom(ip, port).String())
		cancel()
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

// sameFamily keeps the addresses network can reach: all of them for "tcp",
// only IPv4 for "tcp4", only IPv6 for "tcp6" (likewise udp).
func sameFamily(network string, ips []netip.Addr) []netip.Addr {
	var keep func(netip.Addr) bool
	switch {
	case strings.HasSuffix(network, "4"):
		keep = netip.Addr.Is4
	case strings.HasSuffix(network, "6"):
		keep = netip.Addr.Is6
	default:
		return ips
	}
	var out []netip.Addr
	for _, ip := range ips {
		if keep(ip) {
			out = append(out, ip)
		}
	}
	return out
}

// attemptDeadline gives one of left remaining addresses an equal share of
// the time until deadline, but at least minAttempt and never past deadline.
func attemptDeadline(now, deadline time.Time, left int) time.Time {
	remaining := deadline.Sub(now)
	if left <= 1 || remaining <= 0 {
		return deadline
	}
	share := max(remaining/time.Duration(left), minAttempt)
	if share >= remaining {
		return deadline
	}
	return now.Add(share)
}
