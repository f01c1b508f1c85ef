package connect

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// errIDToken is an ID token that does not prove who signed in.
var errIDToken = errors.New("connect: ID token refused")

// idClaims are the ID token's claims the page reads.
type idClaims struct {
	Issuer        string          `json:"iss"`
	Audience      json.RawMessage `json:"aud"` // a string or a list (OpenID Connect Core 1.0, 2)
	Expiry        int64           `json:"exp"`
	Email         string          `json:"email"`
	EmailVerified *bool           `json:"email_verified"`
	Username      string          `json:"preferred_username"` // Microsoft's sign-in name, when email is absent
	TenantID      string          `json:"tid"`
}

// verifyIDToken checks an ID token received from the token endpoint: its
// RS256 signature against the platform's published keys (jwksURL), its
// issuer, that it is for clientID, and that it has not expired. It
// returns the address of the account that signed in.
func verifyIDToken(ctx context.Context, client *http.Client, raw, jwksURL, issuer, clientID string, now time.Time) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: not a signed JWT", errIDToken)
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var claims idClaims
	if err := decodePart(parts[0], &header); err != nil {
		return "", err
	}
	if err := decodePart(parts[1], &claims); err != nil {
		return "", err
	}
	// Only RS256: both Google and Microsoft sign with it, and accepting
	// "none" or an HMAC keyed by a public key are the classic forgeries.
	if header.Alg != "RS256" {
		return "", fmt.Errorf("%w: algorithm %q", errIDToken, header.Alg)
	}
	key, err := fetchKey(ctx, client, jwksURL, header.Kid)
	if err != nil {
		return "", err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", fmt.Errorf("%w: signature: %w", errIDToken, err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		return "", fmt.Errorf("%w: signature: %w", errIDToken, err)
	}
	if want := strings.ReplaceAll(issuer, "{tid}", claims.TenantID); claims.Issuer != want ||
		(strings.Contains(issuer, "{tid}") && claims.TenantID == "") {
		return "", fmt.Errorf("%w: issuer %q", errIDToken, claims.Issuer)
	}
	if !claims.audienceIs(clientID) {
		return "", fmt.Errorf("%w: audience is not this app", errIDToken)
	}
	// A minute's leeway for clocks that differ.
	if claims.Expiry == 0 || now.After(time.Unix(claims.Expiry, 0).Add(time.Minute)) {
		return "", fmt.Errorf("%w: expired", errIDToken)
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

func (c idClaims) audienceIs(clientID string) bool {
	var one string
	if json.Unmarshal(c.Audience, &one) == nil {
		return one == clientID
	}
	var many []string
	if json.Unmarshal(c.Audience, &many) != nil {
		return false
	}
	for _, a := range many {
		if a == clientID {
			return true
		}
	}
	return false
}

func decodePart(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errIDToken, err)
	}
	return nil
}

// fetchKey is the RSA key kid from the JWKS at jwksURL (RFC 7517). Keys
// are fetched per sign-in: sign-ins are rare, and a platform's rotated
// key is then never missed.
func fetchKey(ctx context.Context, client *http.Client, jwksURL, kid string) (*rsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return nil, fmt.Errorf("connect: signing keys: %w", err)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("connect: signing keys: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("connect: signing keys: %s", res.Status)
	}
	var set struct {
		Keys []struct {
			Kty, Kid, N, E string
		} `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("connect: signing keys: %w", err)
	}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Kid != kid {
			continue
		}
		n, errN := base64.RawURLEncoding.DecodeString(k.N)
		e, errE := base64.RawURLEncoding.DecodeString(k.E)
		if errN != nil || errE != nil || len(e) > 4 {
			return nil, fmt.Errorf("%w: key %q is malformed", errIDToken, kid)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	}
	return nil, fmt.Errorf("%w: no signing key %q", errIDToken, kid)
}
