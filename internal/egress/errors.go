package egress

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrDenied is matched (errors.Is) by every *DeniedError, so a caller can
// tell a policy refusal from a network failure without knowing the reason.
var ErrDenied = errors.New("egress denied")

// DeniedError is a dial the guard refused before any socket was opened.
// IP is the offending address; it is the zero Addr when the host itself was
// refused without a lookup ("localhost", an IPv6 zone, an empty host).
type DeniedError struct {
	Host   string
	IP     netip.Addr
	Reason string
}

// Error names the host and the kind of address, but not an address the
// host resolved to: the text reaches API callers (verify, last_error,
// webhook delivery logs), who would otherwise learn the internal network
// name by name. The address stays in IP for the server's own use.
func (e *DeniedError) Error() string {
	switch {
	case !e.IP.IsValid():
		return fmt.Sprintf("egress: %s is a %s host, which is not allowed", e.Host, e.Reason)
	case e.Host == e.IP.String():
		return fmt.Sprintf("egress: %s is a %s address, which is not allowed", e.Host, e.Reason)
	}
	return fmt.Sprintf("egress: %s resolves to a %s address, which is not allowed", e.Host, e.Reason)
}

// Is makes errors.Is(err, ErrDenied) hold.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// DNSError is a lookup that failed or returned no addresses. Err is the
// resolver's error (a *net.DNSError from the system resolver) or
// ErrNoAddresses.
type DNSError struct {
	Host string
	Err  error
}

// ErrNoAddresses is the Err of a DNSError whose lookup succeeded but
// returned nothing.
var ErrNoAddresses = errors.New("no addresses")

func (e *DNSError) Error() string { return fmt.Sprintf("egress: resolve %s: %v", e.Host, e.Err) }

// Unwrap exposes the resolver's error (a *net.DNSError, context.Canceled).
func (e *DNSError) Unwrap() error { return e.Err }
