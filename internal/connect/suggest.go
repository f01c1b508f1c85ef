package connect

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/outbound-mail/outbound/internal/provider"
)

// MXResolver looks up a domain's mail exchangers. *net.Resolver
// satisfies it.
type MXResolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
}

// mxTimeout bounds the MX lookup behind a suggestion: the suggestion is a
// convenience, and a slow DNS server must not hold the page.
const mxTimeout = 2 * time.Second

// ResolveMX looks mail exchangers up through r instead of the system
// resolver (tests answer made-up domains from their own DNS server).
func (p *Page) ResolveMX(r MXResolver) { p.mx = r }

// suggest is the provider for the address email: by its domain when that
// is a provider's own (gmail.com), else by the domain's MX records (a
// company's domain on Google Workspace). Any failure of the lookup is no
// suggestion: the person then chooses.
func (p *Page) suggest(ctx context.Context, email string) (provider.Provider, bool) {
	if pr, ok := provider.ForAddress(email); ok {
		return pr, true
	}
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return provider.Provider{}, false
	}
	domain := strings.TrimSuffix(strings.TrimSpace(email[at+1:]), ".")
	if !strings.Contains(domain, ".") {
		return provider.Provider{}, false // no name to look up in public DNS
	}
	r := p.mx
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, mxTimeout)
	defer cancel()
	// A failure may come with some records (net.Resolver returns those it
	// could parse); they still tell.
	records, err := r.LookupMX(ctx, domain)
	if err != nil && len(records) == 0 {
		p.log.DebugContext(ctx, "connect: no MX suggestion", "domain", domain, "err", err)
		return provider.Provider{}, false
	}
	hosts := make([]string, 0, len(records))
	for _, mx := range records {
		if mx != nil {
			hosts = append(hosts, mx.Host)
		}
	}
	return provider.ForMX(hosts)
}
