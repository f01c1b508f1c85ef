package egress

import (
	"errors"
	"net/netip"
	"testing"
)

// Decisions only: nothing in this file opens a socket.

func TestCheckRefusesNonPublic(t *testing.T) {
	tests := []struct {
		addr   string
		reason string
		// lax: allowed when AllowPrivate is set.
		lax bool
	}{
		// IPv4
		{"10.0.0.1", "private", true},
		{"10.255.255.255", "private", true},
		{"172.16.0.1", "private", true},
		{"172.31.255.254", "private", true},
		{"192.168.0.1", "private", true},
		{"192.168.255.254", "private", true},
		{"100.64.0.1", "shared (CGNAT)", true},
		{"100.127.255.254", "shared (CGNAT)", true},
		{"127.0.0.1", "loopback", true},
		{"127.255.255.254", "loopback", true},
		{"169.254.169.254", "metadata", false},
		// Link-local holds the clouds' host services, never a mail
		// server: refused even on private networks.
		{"169.254.1.1", "link-local", false},
		{"169.254.169.253", "link-local", false}, // AWS DNS resolver
		{"169.254.169.123", "link-local", false}, // AWS time sync
		{"169.254.170.2", "link-local", false},   // ECS task metadata and credentials
		{"169.254.255.255", "link-local", false},
		// Metadata services outside link-local.
		{"100.100.100.200", "metadata", false}, // Alibaba Cloud, inside CGNAT
		{"192.0.0.192", "metadata", false},     // Oracle Cloud, inside 192.0.0.0/24
		{"168.63.129.16", "metadata", false},   // Azure wire server, a public address
		{"0.0.0.0", "unspecified", false},
		{"0.1.2.3", "reserved", false},
		{"192.0.0.8", "reserved", true},
		{"192.0.2.1", "documentation", true},
		{"192.88.99.1", "reserved", true},
		{"198.18.0.1", "benchmarking", true},
		{"198.19.255.254", "benchmarking", true},
		{"198.51.100.7", "documentation", true},
		{"203.0.113.9", "documentation", true},
		{"224.0.0.251", "multicast", false},
		{"239.255.255.250", "multicast", false},
		{"240.0.0.1", "reserved", true},
		{"255.255.255.254", "reserved", true},
		{"255.255.255.255", "broadcast", false},

		// IPv6
		{"::", "unspecified", false},
		{"::1", "loopback", true},
		{"::2", "reserved", true},
		{"::127.0.0.1", "reserved", true}, // deprecated IPv4-compatible
		{"100::1", "discard", true},
		{"2001::1", "Teredo", true},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo", true},
		{"2001:2::1", "benchmarking", true},
		{"2001:10::1", "reserved", true},
		{"2001:db8::1", "documentation", true},
		{"2001:db8:ffff::1", "documentation", true},
		{"3fff::1", "documentation", true},
		{"5f00::1", "reserved", true},
		{"4000::1", "reserved", true}, // outside global unicast 2000::/3
		{"fc00::1", "private", true},
		{"fd12:3456:789a::1", "private", true},
		{"fd00:ec2::254", "metadata", false},
		{"fd00:ec2::253", "metadata", false}, // AWS DNS resolver over IPv6
		{"fd00:ec2::123", "metadata", false}, // AWS time sync over IPv6
		{"fd00:ec2::23", "metadata", false},
		{"fd20:ce::254", "metadata", false}, // GCP metadata over IPv6
		{"fd00:ec3::1", "private", true},    // a neighbour of AWS's prefix stays private
		{"fe80::1", "link-local", false},
		{"febf::1", "link-local", false},
		{"fec0::1", "reserved", true},
		{"ff02::1", "multicast", false},
		{"ff05::1:3", "multicast", false},
		{"fe80::1%eth0", "zoned IPv6", false},
		{"2606:4700::1111%eth0", "zoned IPv6", false},

		// IPv4-mapped IPv6 is judged as the IPv4 address.
		{"::ffff:127.0.0.1", "loopback", true},
		{"::ffff:10.1.1.1", "private", true},
		{"::ffff:169.254.169.254", "metadata", false},
		{"::ffff:0.0.0.0", "unspecified", false},
		{"::ffff:255.255.255.255", "broadcast", false},

		// NAT64 and 6to4 are judged by the IPv4 address they lead to.
		{"64:ff9b::7f00:1", "loopback (NAT64)", true},
		{"64:ff9b::a9fe:a9fe", "metadata (NAT64)", false},
		{"64:ff9b::c0a8:1", "private (NAT64)", true},
		{"64:ff9b::e000:fb", "multicast (NAT64)", false},
		{"64:ff9b:1::808:808", "reserved", true}, // local-use NAT64
		{"2002:7f00:1::1", "loopback (6to4)", true},
		{"2002:c0a8:101::1", "private (6to4)", true},
		{"2002:a9fe:a9fe::1", "metadata (6to4)", false},
		{"2002:6440:1::1", "shared (CGNAT) (6to4)", true},
		{"::ffff:169.254.170.2", "link-local", false},
		{"64:ff9b::a9fe:aa02", "link-local (NAT64)", false},
		{"64:ff9b::6464:64c8", "metadata (NAT64)", false},
	}
	strict, lax := &Guard{}, &Guard{AllowPrivate: true}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.addr)
			if IsPublic(ip) {
				t.Error("IsPublic = true")
			}
			err := strict.Check(ip)
			var de *DeniedError
			if !errors.As(err, &de) || !errors.Is(err, ErrDenied) {
				t.Fatalf("Check = %v, want a *DeniedError matching ErrDenied", err)
			}
			if de.Reason != tt.reason {
				t.Errorf("reason %q, want %q", de.Reason, tt.reason)
			}
			if de.IP != ip.Unmap() {
				t.Errorf("IP %s, want %s", de.IP, ip.Unmap())
			}
			err = lax.Check(ip)
			if tt.lax && err != nil {
				t.Errorf("AllowPrivate: Check = %v, want nil", err)
			}
			if !tt.lax && !errors.Is(err, ErrDenied) {
				t.Errorf("AllowPrivate: Check = %v, want ErrDenied", err)
			}
		})
	}
}

func TestCheckAllowsPublic(t *testing.T) {
	for _, addr := range []string{
		"8.8.8.8",
		"1.1.1.1",
		"142.250.27.108",
		"11.0.0.1",
		"100.63.255.255",  // just below CGNAT
		"100.128.0.1",     // just above CGNAT
		"172.15.255.255",  // just below 172.16/12
		"172.32.0.1",      // just above
		"169.253.255.255", // just below link-local
		"192.169.0.1",
		"198.17.255.255",
		"198.20.0.1",
		"223.255.255.255", // just below multicast
		"2606:4700::1111",
		"2a00:1450:4009::6d",
		"2001:4860:4860::8888",
		"2001:1::1", // just past Teredo
		"2001:2:1::1",
		"2001:db9::1",
		"::ffff:8.8.8.8",
		"64:ff9b::808:808", // NAT64 of 8.8.8.8
		"2002:808:808::1",  // 6to4 of 8.8.8.8
	} {
		t.Run(addr, func(t *testing.T) {
			ip := netip.MustParseAddr(addr)
			if !IsPublic(ip) {
				t.Error("IsPublic = false")
			}
			for _, g := range []*Guard{{}, {AllowPrivate: true}} {
				if err := g.Check(ip); err != nil {
					t.Errorf("AllowPrivate=%v: Check = %v", g.AllowPrivate, err)
				}
			}
		})
	}
}

func TestCheckInvalidAddress(t *testing.T) {
	if IsPublic(netip.Addr{}) {
		t.Error("the zero Addr is public")
	}
	for _, g := range []*Guard{{}, {AllowPrivate: true}} {
		if err := g.Check(netip.Addr{}); !errors.Is(err, ErrDenied) {
			t.Errorf("AllowPrivate=%v: Check(zero) = %v", g.AllowPrivate, err)
		}
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"address", &DeniedError{Host: "smtp.example.com", IP: netip.MustParseAddr("10.0.0.5"), Reason: "private"},
			"egress: smtp.example.com resolves to a private address, which is not allowed"},
		{"literal", &DeniedError{Host: "10.0.0.5", IP: netip.MustParseAddr("10.0.0.5"), Reason: "private"},
			"egress: 10.0.0.5 is a private address, which is not allowed"},
		{"host", &DeniedError{Host: "localhost", Reason: "loopback"},
			"egress: localhost is a loopback host, which is not allowed"},
		{"dns", &DNSError{Host: "smtp.example.com", Err: ErrNoAddresses},
			"egress: resolve smtp.example.com: no addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBlocksMostSpecificFirst(t *testing.T) {
	for i := 1; i < len(blocks); i++ {
		if blocks[i].prefix.Bits() > blocks[i-1].prefix.Bits() {
			t.Fatalf("%s after %s", blocks[i].prefix, blocks[i-1].prefix)
		}
	}
}
