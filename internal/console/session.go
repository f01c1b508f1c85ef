package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/apikey"
)

// SessionTTL is how long a sign-in lasts.
const SessionTTL = 12 * time.Hour

// session is what Redis holds for a signed-in browser: the key's identity
// (its name, looked up again in the configured keys on every request, so a
// key removed from the configuration ends its sessions) and the session's
// CSRF token. Never the API token.
type session struct {
	KeyName string `json:"key"`
	CSRF    string `json:"csrf"`
	key     apikey.Key
}

// sessionKey names a session by a hash of its id: Redis never holds the
// cookie's value, so a copy of the data cannot be replayed as a cookie.
func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "outbound:console:session:" + hex.EncodeToString(sum[:])
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

type sessions struct {
	rdb  redis.UniversalClient
	keys apikey.Set
}

var errNoSession = errors.New("console: no session")

// create stores a new session for key and returns its id.
func (s sessions) create(ctx context.Context, key apikey.Key) (string, error) {
	id := randomToken()
	b, _ := json.Marshal(session{KeyName: key.Name, CSRF: randomToken()})
	if err := s.rdb.Set(ctx, sessionKey(id), b, SessionTTL).Err(); err != nil {
		return "", fmt.Errorf("console: session: %w", err)
	}
	return id, nil
}

// open reads the session id names; errNoSession if it is unknown, expired
// or its key is no longer configured.
func (s sessions) open(ctx context.Context, id string) (session, error) {
	if id == "" {
		return session{}, errNoSession
	}
	b, err := s.rdb.Get(ctx, sessionKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return session{}, errNoSession
	}
	if err != nil {
		return session{}, fmt.Errorf("console: session: %w", err)
	}
	var ses session
	if err := json.Unmarshal(b, &ses); err != nil {
		return session{}, errNoSession
	}
	for _, k := range s.keys {
		if k.Name == ses.KeyName && k.Scope == apikey.ScopeAdmin {
			ses.key = k
			return ses, nil
		}
	}
	return session{}, errNoSession
}

func (s sessions) delete(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, sessionKey(id)).Err(); err != nil {
		return fmt.Errorf("console: sign out: %w", err)
	}
	return nil
}

// LinkTTL is how long a one-time sign-in link stays usable.
const LinkTTL = 15 * time.Minute

// linkKey names a one-time sign-in link by a hash of its token, as
// sessionKey does a session.
func linkKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return "outbound:console:once:" + hex.EncodeToString(sum[:])
}

// EnableSignInLinks lets SignInLink make links and GET /console/signin
// honour them. Only `outbound dev` calls it: a served console ignores
// ?once=, so a link can never stand in for a token there.
func (c *Console) EnableSignInLinks() { c.links = true }

// SignInLink is a path that signs a browser in as the admin key named
// keyName once, within LinkTTL.
func (c *Console) SignInLink(ctx context.Context, keyName string) (string, error) {
	if !c.links {
		return "", errors.New("console: sign-in links are not enabled")
	}
	if _, ok := c.adminKey(keyName); !ok {
		return "", fmt.Errorf("console: sign-in link: no admin key %q", keyName)
	}
	tok := randomToken()
	if err := c.d.Redis.Set(ctx, linkKey(tok), keyName, LinkTTL).Err(); err != nil {
		return "", fmt.Errorf("console: sign-in link: %w", err)
	}
	return Prefix + "/signin?once=" + tok, nil
}

// adminKey is the configured admin key named name.
func (c *Console) adminKey(name string) (apikey.Key, bool) {
	for _, k := range c.d.Keys {
		if k.Name == name && k.Scope == apikey.ScopeAdmin {
			return k, true
		}
	}
	return apikey.Key{}, false
}

// linkSignin spends the one-time link tok: a session for its key, or
// false when it is unknown, used or expired (the caller shows the form).
func (c *Console) linkSignin(w http.ResponseWriter, r *http.Request, tok string) bool {
	name, err := c.d.Redis.GetDel(r.Context(), linkKey(tok)).Result()
	if errors.Is(err, redis.Nil) {
		return false
	}
	if err != nil {
		c.unavailable(w, r, err)
		return true
	}
	key, ok := c.adminKey(name)
	if !ok {
		return false
	}
	c.startSession(w, r, key)
	return true
}
