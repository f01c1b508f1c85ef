package connect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// errIDToken is an ID token that does not prove who signed in.
var errIDToken = errors.New("connect: ID token refused")

// idClaims are the ID token's claims the page reads beyond those go-oidc
// checks.
type idClaims struct {
	Email         string `json:"email"`
	EmailVerified *bool  `json:"email_verified"`
	Username      string `json:"preferred_username"` // Microsoft's sign-in name, when email is absent
	TenantID      string `json:"tid"`
}

// signingKeys is the key set an identity platform publishes at jwksURL
// (RFC 7517), fetched through client (the egress guard's) when first
// needed, kept, and fetched again when a token names a key not seen, as a
// platform that rotates its keys starts to: go-oidc's RemoteKeySet.
func signingKeys(client *http.Client, jwksURL string) *oidc.RemoteKeySet {
	return oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), client), jwksURL)
}

// verifyIDToken checks an ID token received from the token endpoint: its
// RS256 signature against the platform's keys, its issuer, that it is for
// clientID and that it has not expired (a minute's leeway for clocks that
// differ), and returns the verified address of the account that signed
// in. An issuer with "{tid}" (Microsoft's "common" directory) is the
// token's own directory's: the token's tid fills it.
func verifyIDToken(ctx context.Context, keys oidc.KeySet, raw, issuer, clientID string, now time.Time) (string, error) {
	perDirectory := strings.Contains(issuer, "{tid}")
	// Only RS256: both Google and Microsoft sign with it, and accepting
	// "none" or an HMAC keyed by a public key are the classic forgeries.
	tok, err := oidc.NewVerifier(issuer, keys, &oidc.Config{ClientID: clientID, SupportedSigningAlgs: []string{oidc.RS256},
		SkipIssuerCheck: perDirectory, Now: func() time.Time { return now.Add(-time.Minute) }}).Verify(ctx, raw)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errIDToken, err)
	}
	var claims idClaims
	if err := tok.Claims(&claims); err != nil {
		return "", fmt.Errorf("%w: %w", errIDToken, err)
	}
	if perDirectory && (claims.TenantID == "" || tok.Issuer != strings.ReplaceAll(issuer, "{tid}", claims.TenantID)) {
		return "", fmt.Errorf("%w: issuer %q", errIDToken, tok.Issuer)
	}
	if claims.EmailVerified != nil && !*claims.EmailVerified {
		return "", fmt.Errorf("%w: address not verified", errIDToken)
	}
	email := claims.Email
	if email == "" && strings.Contains(claims.Username, "@") {
		email = claims.Username
	}
	if email == "" {
		return "", fmt.Errorf("%w: no email claim", errIDToken)
	}
	return email, nil
}
