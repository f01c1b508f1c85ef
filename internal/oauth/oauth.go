// Package oauth gets the OAuth2 access tokens that xoauth2 profiles log in
// with: the client-credentials and refresh-token grants (golang.org/x/oauth2),
// a cache in Redis shared by every replica (sealed, like passwords), and one
// refresh at a time per profile across replicas, so a burst of mail does not
// hammer the provider's token endpoint. A refresh token the provider
// rotates is stored back on the profile.
package oauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/outbound-mail/outbound/internal/egress"
	"github.com/outbound-mail/outbound/internal/provider"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// Grant is one profile's way to a token. Version scopes the cache: a
// changed profile never uses a token of its previous configuration.
type Grant struct {
	TenantID string
	Version  int64
	tenant.OAuth
}

// RotateFunc stores a refresh token the provider replaced.
type RotateFunc func(ctx context.Context, tenantID string, version int64, refreshToken secret.String) error

// Tokens issues access tokens.
type Tokens struct {
	rdb     redis.UniversalClient
	sealer  *seal.Sealer
	client  *http.Client
	rotated RotateFunc
	// LockTTL bounds one refresh; other replicas wait for its result at
	// most this long.
	LockTTL time.Duration
}

// New returns a token source backed by rdb. client makes the token
// requests (see HTTPClient).
func New(rdb redis.UniversalClient, sealer *seal.Sealer, client *http.Client, rotated RotateFunc) *Tokens {
	return &Tokens{rdb: rdb, sealer: sealer, client: client, rotated: rotated, LockTTL: 15 * time.Second}
}

// Error is a failed token request.
type Error struct {
	Code        string // the provider's error: invalid_client, invalid_grant, ...
	Description string
	Status      int // HTTP status, 0 when the request did not get an answer
	Err         error
}

func (e *Error) Error() string {
	switch {
	case e.Code != "" && e.Description != "":
		return "token request refused: " + e.Code + ": " + e.Description
	case e.Code != "":
		return "token request refused: " + e.Code
	}
	return "token request failed: " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may help: no answer, or a
// 5xx, or a 429.
func (e *Error) Temporary() bool {
	return e.Code == "" && (e.Status == 0 || e.Status >= 500 || e.Status == http.StatusTooManyRequests)
}

// Hint says what a person can do.
func (e *Error) Hint() string {
	switch e.Code {
	case "invalid_client", "unauthorized_client":
		return "The token endpoint refused the app's client id or secret. Check the client id, and create a new client secret if the old one expired."
	case "invalid_grant":
		return "The refresh token was refused: it was revoked or expired, or the user changed their password. Authorize the app again and store the new refresh token."
	case "invalid_scope":
		return "The token endpoint refused the scope. " + provider.ScopeAdvice()
	case "":
		if errors.Is(e.Err, egress.ErrDenied) {
			return "The token endpoint resolves to a private or reserved address. Outbound only connects to public endpoints."
		}
		return "The token endpoint could not be reached. This is usually temporary."
	}
	return "The token endpoint refused the request (" + e.Code + ")."
}

func keys(g Grant) (cache, lock string) {
	base := "outbound:oauth:{" + g.TenantID + "}:v" + strconv.FormatInt(g.Version, 10)
	return base + ":token", base + ":lock"
}

func cacheAD(g Grant) []byte {
	return []byte("outbound/oauth/" + g.TenantID + "/" + strconv.FormatInt(g.Version, 10))
}

// expiryMargin: a cached token is replaced this long before it expires, so
// none expires in the middle of a session's login.
const expiryMargin = time.Minute

type cached struct {
	AccessToken string    `json:"access_token"`
	Expiry      time.Time `json:"expiry"`
}

// Token returns a valid access token for g: from the shared cache, or
// fetched by exactly one replica while the others wait for it.
func (t *Tokens) Token(ctx context.Context, g Grant) (secret.String, error) {
	cacheKey, lockKey := keys(g)
	holder := randomID()
	deadline := time.Now().Add(t.LockTTL)
	for {
		if tok, ok, err := t.cached(ctx, g, cacheKey); err != nil || ok {
			return tok, err
		}
		got, err := t.rdb.SetNX(ctx, lockKey, holder, t.LockTTL).Result()
		if err != nil {
			return secret.String{}, fmt.Errorf("oauth: lock: %w", err)
		}
		if got {
			tok, err := t.refresh(ctx, g, cacheKey)
			t.unlock(lockKey, holder)
			return tok, err
		}
		if time.Now().After(deadline) {
			return secret.String{}, &Error{Err: errors.New("another replica's token refresh did not finish in time")}
		}
		select {
		case <-ctx.Done():
			return secret.String{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (t *Tokens) cached(ctx context.Context, g Grant, key string) (secret.String, bool, error) {
	v, err := t.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return secret.String{}, false, nil
	}
	if err != nil {
		return secret.String{}, false, fmt.Errorf("oauth: cache: %w", err)
	}
	plain, err := t.sealer.Open(v, cacheAD(g))
	if err != nil {
		return secret.String{}, false, nil // sealed under a retired key: fetch anew
	}
	var c cached
	if json.Unmarshal(plain, &c) != nil || time.Until(c.Expiry) < expiryMargin {
		return secret.String{}, false, nil
	}
	return secret.New(c.AccessToken), true, nil
}

// refresh fetches a token while holding the lock, caches it, and stores a
// rotated refresh token.
func (t *Tokens) refresh(ctx context.Context, g Grant, cacheKey string) (secret.String, error) {
	if tok, ok, err := t.cached(ctx, g, cacheKey); err != nil || ok { // filled while we took the lock
		return tok, err
	}
	tok, err := t.Fetch(ctx, g.OAuth)
	if err != nil {
		return secret.String{}, err
	}
	expiry := tok.Expiry
	if expiry.IsZero() {
		expiry = time.Now().Add(5*time.Minute + expiryMargin) // no expires_in: keep it briefly
	}
	if ttl := time.Until(expiry) - expiryMargin; ttl > 0 {
		b, _ := json.Marshal(cached{AccessToken: tok.AccessToken, Expiry: expiry})
		sealed, err := t.sealer.Seal(b, cacheAD(g))
		if err != nil {
			return secret.String{}, fmt.Errorf("oauth: %w", err)
		}
		if err := t.rdb.Set(ctx, cacheKey, sealed, ttl).Err(); err != nil {
			return secret.String{}, fmt.Errorf("oauth: cache: %w", err)
		}
	}
	if rt := tok.RefreshToken; g.Flow == tenant.FlowRefreshToken && rt != "" && rt != g.RefreshToken.Reveal() && t.rotated != nil {
		if err := t.rotated(ctx, g.TenantID, g.Version, secret.New(rt)); err != nil {
			return secret.String{}, fmt.Errorf("oauth: store the rotated refresh token: %w", err)
		}
	}
	return secret.New(tok.AccessToken), nil
}

var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

func (t *Tokens) unlock(lockKey, holder string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = unlockScript.Run(ctx, t.rdb, []string{lockKey}, holder).Err()
}

// Forget drops g's cached token: the server refused it.
func (t *Tokens) Forget(ctx context.Context, g Grant) error {
	cacheKey, _ := keys(g)
	if err := t.rdb.Del(ctx, cacheKey).Err(); err != nil {
		return fmt.Errorf("oauth: forget: %w", err)
	}
	return nil
}

// Fetch requests a token from the endpoint, without the cache (used for
// testing a profile that is not stored).
func (t *Tokens) Fetch(ctx context.Context, o tenant.OAuth) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, t.client)
	scopes := strings.Fields(o.Scope)
	var tok *oauth2.Token
	var err error
	switch o.Flow {
	case tenant.FlowClientCredentials:
		cc := clientcredentials.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret.Reveal(), TokenURL: o.TokenURL,
			Scopes: scopes, AuthStyle: oauth2.AuthStyleInParams}
		tok, err = cc.Token(ctx)
	case tenant.FlowRefreshToken:
		c := oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret.Reveal(), Scopes: scopes,
			Endpoint: oauth2.Endpoint{TokenURL: o.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
		tok, err = c.TokenSource(ctx, &oauth2.Token{RefreshToken: o.RefreshToken.Reveal()}).Token()
	default:
		return nil, &Error{Err: fmt.Errorf("unknown flow %q", o.Flow)}
	}
	if err != nil {
		return nil, asError(err)
	}
	return tok, nil
}

// asError keeps the provider's error code and never the request (which
// holds the client secret or refresh token).
func asError(err error) *Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e := &Error{Code: re.ErrorCode, Description: re.ErrorDescription, Err: errors.New("token endpoint refused the request")}
		if re.Response != nil {
			e.Status = re.Response.StatusCode
		}
		if e.Code == "" {
			e.Code = "http_" + strconv.Itoa(e.Status)
			if e.Status >= 500 || e.Status == http.StatusTooManyRequests {
				e.Code = ""
			}
		}
		return e
	}
	return &Error{Err: err}
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
