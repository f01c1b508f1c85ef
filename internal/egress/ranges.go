package egress

import "net/netip"

// A range of non-public addresses and why it is not public. Sources: the
// IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and
// successors).
type special struct {
	prefix netip.Prefix
	reason string
}

var specials = func() []special {
	list := []struct{ cidr, reason string }{
		{"0.0.0.0/8", "unspecified"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "shared (CGNAT)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.169.254/32", "metadata"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "reserved"},
		{"192.0.2.0/24", "documentation"},
		{"192.88.99.0/24", "reserved"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation"},
		{"203.0.113.0/24", "documentation"},
		{"224.0.0.0/4", "multicast"},
		{"255.255.255.255/32", "broadcast"},
		{"240.0.0.0/4", "reserved"},
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"100::/64", "discard"},
		{"2001::/32", "Teredo"},
		{"2001:db8::/32", "documentation"},
		{"2001:10::/28", "reserved"},
		{"2001:20::/28", "reserved"},
		{"fd00:ec2::254/128", "metadata"},
		{"fc00::/7", "private"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "reserved"},
		{"ff00::/8", "multicast"},
	}
	out := make([]special, len(list))
	for i, s := range list {
		out[i] = special{netip.MustParsePrefix(s.cidr), s.reason}
	}
	return out
}()

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	nat64L    = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour = netip.MustParsePrefix("2002::/16")
	global6   = netip.MustParsePrefix("2000::/3")
)

// classify returns why ip is not public, or "" when it is.
func classify(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid"
	}
	if ip.Zone() != "" {
		return "zoned IPv6"
	}
	// The first match wins, so /32 entries precede their enclosing range.
	for _, s := range specials {
		if s.prefix.Contains(ip) {
			return s.reason
		}
	}
	if ip.Is6() {
		// Addresses that embed an IPv4 address reach that address.
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			if r := classify(netip.AddrFrom4([4]byte(b[12:16]))); r != "" {
				return r + " (NAT64)"
			}
			return "" // a translator's address for a public IPv4 one
		case nat64L.Contains(ip):
			return "reserved"
		case sixToFour.Contains(ip):
			if r := classify(netip.AddrFrom4([4]byte(b[2:6]))); r != "" {
				return r + " (6to4)"
			}
		}
		if !global6.Contains(ip) {
			return "reserved" // outside global unicast
		}
	}
	return ""
}

// unroutable reasons can never carry a TCP session, so they stay refused
// even when private networks are allowed.
func unroutable(reason string) bool {
	switch reason {
	case "unspecified", "multicast", "broadcast", "invalid", "zoned IPv6":
		return true
	}
	return false
}
