package egress

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"time"
)

// HTTPClient returns an HTTP client whose every connection goes through
// the guard, for user-entered URLs (webhooks, OAuth2 token endpoints).
// Certificates are verified against roots (nil: the system's). It uses no
// proxy, since a proxy would resolve the name itself and the guard would
// only ever see the proxy, and it follows no redirect, since a redirect
// could lead somewhere the user never entered.
func (g *Guard) HTTPClient(roots *x509.CertPool, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         g.DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     time.Minute,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
