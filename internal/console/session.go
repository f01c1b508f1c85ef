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
