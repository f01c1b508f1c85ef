package egress

import (
	"cmp"
	"net/netip"
	"slices"
)

// verdict is what the policy says about one address: reason is empty for a
// public address; unusable marks addresses refused even when private
// networks are allowed: those no TCP session can go to, and those where a
// cloud serves the host itself (metadata, credentials, DNS, time), which a
// tenant-entered host must never reach.
type verdict struct {
	reason   string
	unusable bool
}

// block is a range that is not public. Sources: the IANA IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890 and the RFCs they cite),
// plus the cloud metadata endpoints.
//
// All of link-local is unusable, not only 169.254.169.254: the clouds put
// their host services there (AWS DNS .253, time sync .123, ECS task
// credentials 169.254.170.2, Azure and GCP metadata), and no mail server,
// relay or webhook receiver is reached at a link-local address: private
// networks, which AllowPrivate is for, use routable private addresses.
// Metadata services outside link-local are listed one by one.
type block struct {
	prefix netip.Prefix
	verdict
}

// blocks is sorted longest prefix first, so the first match is the most
// specific one (169.254.169.254/32 "metadata" before 169.254.0.0/16).
var blocks = newBlocks([]struct {
	cidr, reason string
	unusable     bool
}{
	// IPv4
	{"0.0.0.0/32", "unspecified", true},
	{"0.0.0.0/8", "reserved", true},            // "this network" (RFC 791): a source, never a destination
	{"10.0.0.0/8", "private", false},           // RFC 1918
	{"100.64.0.0/10", "shared (CGNAT)", false}, // RFC 6598
	{"100.100.100.200/32", "metadata", true},   // Alibaba Cloud metadata
	{"127.0.0.0/8", "loopback", false},
	{"168.63.129.16/32", "metadata", true},   // Azure wire server (a public address)
	{"169.254.0.0/16", "link-local", true},   // RFC 3927; see above
	{"169.254.169.254/32", "metadata", true}, // AWS, GCP, Azure and others' metadata
	{"172.16.0.0/12", "private", false},
	{"192.0.0.0/24", "reserved", false},      // IETF protocol assignments (RFC 6890)
	{"192.0.0.192/32", "metadata", true},     // Oracle Cloud metadata
	{"192.0.2.0/24", "documentation", false}, // TEST-NET-1 (RFC 5737)
	{"192.88.99.0/24", "reserved", false},    // deprecated 6to4 relay anycast (RFC 7526)
	{"192.168.0.0/16", "private", false},
	{"198.18.0.0/15", "benchmarking", false}, // RFC 2544
	{"198.51.100.0/24", "documentation", false},
	{"203.0.113.0/24", "documentation", false},
	{"224.0.0.0/4", "multicast", true},
	{"240.0.0.0/4", "reserved", false}, // RFC 1112
	{"255.255.255.255/32", "broadcast", true},

	// IPv6. Anything outside 2000::/3 is refused as "reserved" by classify;
	// the entries below outside it only give a better reason.
	{"::/128", "unspecified", true},
	{"::1/128", "loopback", false},
	{"64:ff9b:1::/48", "reserved", false},     // local-use NAT64 (RFC 8215)
	{"100::/64", "discard", false},            // RFC 6666
	{"2001::/32", "Teredo", false},            // RFC 4380: tunnels to an unknown IPv4 host
	{"2001:2::/48", "benchmarking", false},    // RFC 5180
	{"2001:10::/28", "reserved", false},       // ORCHID (RFC 4843)
	{"2001:20::/28", "reserved", false},       // ORCHIDv2 (RFC 7343): identifiers, not locators
	{"2001:db8::/32", "documentation", false}, // RFC 3849
	{"3fff::/20", "documentation", false},     // RFC 9637
	{"5f00::/16", "reserved", false},          // SRv6 SIDs (RFC 9602)
	{"fc00::/7", "private", false},            // unique local (RFC 4193)
	{"fd00:ec2::/32", "metadata", true},       // AWS host services over IPv6: metadata ::254, DNS ::253, time ::123
	{"fd20:ce::254/128", "metadata", true},    // GCP metadata over IPv6
	{"fe80::/10", "link-local", true},         // as 169.254.0.0/16
	{"fec0::/10", "reserved", false},          // deprecated site-local (RFC 3879)
	{"ff00::/8", "multicast", true},
})

func newBlocks(list []struct {
	cidr, reason string
	unusable     bool
}) []block {
	out := make([]block, len(list))
	for i, b := range list {
		out[i] = block{netip.MustParsePrefix(b.cidr), verdict{b.reason, b.unusable}}
	}
	slices.SortStableFunc(out, func(a, b block) int { return cmp.Compare(b.prefix.Bits(), a.prefix.Bits()) })
	return out
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052 well-known prefix
	sixToFour = netip.MustParsePrefix("2002::/16")    // RFC 3056
	global6   = netip.MustParsePrefix("2000::/3")     // IPv6 global unicast
)

// classify says whether ip is public and, if not, why. An IPv4-mapped IPv6
// address is judged as the IPv4 address it maps to; NAT64 and 6to4
// addresses are judged by the IPv4 address they lead to.
func classify(ip netip.Addr) verdict {
	switch {
	case !ip.IsValid():
		return verdict{"invalid", true}
	case ip.Zone() != "":
		return verdict{"zoned IPv6", true}
	}
	ip = ip.Unmap()
	for _, b := range blocks {
		if b.prefix.Contains(ip) {
			return b.verdict
		}
	}
	if ip.Is4() {
		return verdict{}
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		return embedded(netip.AddrFrom4([4]byte(b[12:16])), "NAT64")
	case sixToFour.Contains(ip):
		return embedded(netip.AddrFrom4([4]byte(b[2:6])), "6to4")
	case !global6.Contains(ip):
		return verdict{reason: "reserved"}
	}
	return verdict{}
}

// embedded judges an IPv6 address by the IPv4 address it carries.
func embedded(v4 netip.Addr, via string) verdict {
	v := classify(v4)
	if v.reason != "" {
		v.reason += " (" + via + ")"
	}
	return v
}

// IsPublic reports whether ip is a globally routable unicast address: not
// loopback, private, link-local, shared, documentation, multicast or any
// other special-purpose range, whether written as IPv4, IPv4-mapped IPv6,
// NAT64 or 6to4. Zoned addresses are never public.
func IsPublic(ip netip.Addr) bool { return classify(ip).reason == "" }

// Check reports whether ip may be dialled under the guard's policy: nil, or
// a *DeniedError naming the reason. With AllowPrivate, every unicast
// address is allowed except link-local and the cloud metadata endpoints,
// whose credentials a tenant-entered URL must never reach; unspecified,
// multicast, broadcast and zoned addresses never are.
func (g *Guard) Check(ip netip.Addr) error {
	v := classify(ip)
	if v.reason == "" || g.AllowPrivate && !v.unusable {
		return nil
	}
	return &DeniedError{Host: ip.String(), IP: ip.Unmap(), Reason: v.reason}
}
