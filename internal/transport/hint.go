package transport

import (
	"crypto/x509"
	"errors"
	"strings"

	"github.com/outbound-mail/outbound/internal/provider"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// withHint fills e.Hint with advice for the person fixing the profile.
func withHint(e *Error, srv Server) *Error {
	if e.Hint == "" {
		e.Hint = hint(e, srv)
	}
	return e
}

func hint(e *Error, srv Server) string {
	switch e.Code {
	case CodeAuthFailed:
		return authHint(e, srv)
	case CodeTLSFailed:
		return tlsHint(e, srv)
	case CodeDNSFailed:
		return "The host name " + srv.Host + " does not resolve. Check its spelling (Gmail: smtp.gmail.com)."
	case CodeConnectFailed:
		if e.SMTPCode != 0 {
			return "The server refused the session before login; it may be limiting connections. Try again later."
		}
		return "Nothing accepted a connection at " + srv.Addr() + ". Check the host and port (Gmail: smtp.gmail.com, port 465)."
	case CodeTimeout:
		return "No answer from " + srv.Addr() + " in time. Check the host and port; some networks block outgoing SMTP ports."
	case CodeEgressDenied:
		return "The host resolves to a private, loopback or reserved address. Outbound connects only to public mail servers."
	case CodeConnectionLost:
		return "The server closed the connection unexpectedly. This is usually temporary."
	case CodeReplyTooLong:
		return "The server at " + srv.Addr() + " sent a reply longer than any mail server's; the session was ended. Check that the host and port are a mail server's."
	}
	return ""
}

func authHint(e *Error, srv Server) string {
	if srv.Auth == tenant.AuthXOAuth2 {
		if h := provider.TokenHint(srv.Host); h != "" {
			return h
		}
		return "The server refused the OAuth2 token: check the scope the token was issued for and the username."
	}
	if h := provider.LoginHint(srv.Host, e.SMTPCode, e.EnhancedCode, e.Message); h != "" {
		return h
	}
	switch {
	case e.SMTPCode == 454 || e.SMTPCode == 421:
		return "The server could not check the login just now. This is usually temporary."
	case e.SMTPCode == 0 && strings.Contains(strings.ToLower(e.Message), "no auth"):
		return "The server offers no login on this connection. Check the host and port of the provider's submission server."
	}
	return "The server refused the username or password. Check both; providers with two-factor login usually need an app-specific password."
}

func tlsHint(e *Error, srv Server) string {
	var hostnameErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var unknownAuthority x509.UnknownAuthorityError
	switch {
	case strings.Contains(e.Message, "STARTTLS"):
		return "The server does not offer STARTTLS, so the password would travel unencrypted; Outbound refuses. " +
			"Use port 465 with security \"tls\" if the provider offers it."
	case errors.As(e.Err, &hostnameErr):
		return "The server's certificate is not valid for " + srv.Host + ". Use the host name the provider publishes."
	case errors.As(e.Err, &invalidCert) && invalidCert.Reason == x509.Expired:
		return "The server's certificate has expired (or is not yet valid). The provider must renew it."
	case errors.As(e.Err, &unknownAuthority):
		return "The server's certificate is not signed by a trusted authority (self-signed?). Use the provider's official host name; " +
			"an operator can trust a private CA with OUTBOUND_SMTP_CA_FILE."
	case strings.Contains(strings.ToLower(e.Message), "first record does not look like a tls handshake") ||
		strings.Contains(strings.ToLower(e.Message), "record header"):
		if srv.Security == tenant.SecurityTLS {
			return "The server did not answer with TLS on port " + srv.Addr() + ": this port likely uses STARTTLS. Set security to \"starttls\", or use port 465."
		}
	}
	return "The TLS connection to the server could not be established securely."
}
