package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/cache"
	"github.com/outbound-mail/outbound/internal/coalesce"
	"github.com/outbound-mail/outbound/internal/outage"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
)

var (
	// ErrNotFound means the tenant has no stored profile.
	ErrNotFound = errors.New("tenant: no SMTP profile")
	// ErrVersionConflict means the stored profile is not the version the
	// write was based on (someone else wrote in between, or If-Match was
	// stale).
	ErrVersionConflict = errors.New("tenant: profile version conflict")
)

// Store keeps profiles in Redis, one hash per tenant under a hash-tagged key
// so that every script touching it runs on Redis Cluster too.
type Store struct {
	rdb    redis.UniversalClient
	sealer *seal.Sealer
	now    func() time.Time
	cache  *cache.Cache[loaded] // nil: Load reads Redis every time
	loads  *coalesce.Group[string, loaded]
	// watchers are told of every change (see Watch).
	watchers watchers
}

// loaded is what Load returns, as cached.
type loaded struct {
	profile Profile
	found   bool
	status  Status
	err     error // this tenant's, when its profile does not decode
}

// UseCache makes Load answer from memory for up to ttl, dropping a
// tenant's entry the moment any replica writes it. Delivery and accept
// read the tenant for every message; writes are rare.
func (s *Store) UseCache(ttl time.Duration) (stop func() error) {
	s.cache = cache.New[loaded](s.rdb, "outbound:tenant-changed", ttl)
	return s.cache.Close
}

// changed tells every replica's cache that the tenant was written. A lost
// notice only delays the change by the cache's TTL, so it is not an error
// of the write.
func (s *Store) changed(ctx context.Context, tenantID string) {
	if s.cache != nil {
		_ = s.cache.Invalidate(ctx, tenantID)
	}
}

// NewStore returns a store sealing passwords with sealer.
func NewStore(rdb redis.UniversalClient, sealer *seal.Sealer) *Store {
	s := &Store{rdb: rdb, sealer: sealer, now: time.Now, watchers: watchers{origin: newOrigin()}}
	s.loads = coalesce.New(64, s.loadMany)
	return s
}

// Key is the Redis key of a tenant's profile.
func Key(tenantID string) string { return "outbound:tenant:{" + tenantID + "}:smtp" }

// passwordAD binds a sealed password to its tenant: copied into another
// tenant's hash, it does not open.
func passwordAD(tenantID string) []byte { return secretAD(tenantID, "password") }

// secretAD binds a sealed secret to its tenant and field.
func secretAD(tenantID, field string) []byte {
	return []byte("outbound/tenant/" + tenantID + "/smtp/" + field)
}

// Get returns the tenant's profile with its password opened.
func (s *Store) Get(ctx context.Context, tenantID string) (_ Profile, err error) {
	defer outage.Mark(&err)
	if !ValidID(tenantID) {
		return Profile{}, ErrInvalidID
	}
	h, err := s.rdb.HGetAll(ctx, Key(tenantID)).Result()
	if err != nil {
		return Profile{}, fmt.Errorf("tenant: get %s: %w", tenantID, err)
	}
	if len(h) == 0 {
		return Profile{}, ErrNotFound
	}
	return s.decode(tenantID, h)
}

// putScript replaces the hash only when its version is the expected one
// (ARGV[1], "0" for "must not exist yet"). It answers the stored version
// on conflict.
var putScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'version') or '0'
if cur ~= ARGV[1] then return {0, cur} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return {1, cur}
`)

// Put stores p as the next version after expectVersion (0: the profile must
// not exist yet). It seals the password with the current key, so a profile
// sealed with a previous key is re-sealed when next written. It returns the
// profile as stored, with version and timestamps set.
func (s *Store) Put(ctx context.Context, p Profile, expectVersion int64) (_ Profile, err error) {
	defer outage.Mark(&err)
	if !ValidID(p.TenantID) {
		return Profile{}, ErrInvalidID
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	if expectVersion == 0 || p.CreatedAt.IsZero() {
		p.CreatedAt = now
	}
	p.UpdatedAt = now
	p.Version = expectVersion + 1
	p.LastError = nil // it described the previous configuration

	sealed, err := s.sealer.Seal([]byte(p.Password.Reveal()), passwordAD(p.TenantID))
	if err != nil {
		return Profile{}, fmt.Errorf("tenant: put %s: %w", p.TenantID, err)
	}
	args := []any{strconv.FormatInt(expectVersion, 10),
		"enabled", strconv.FormatBool(p.Enabled),
		"provider", p.Provider,
		"sender_name", p.SenderName,
		"email", p.Email,
		"username", p.Username,
		"password", sealed,
		"host", p.Host,
		"port", p.Port,
		"security", string(p.Security),
		"auth", string(p.Auth),
		"fallback_to_default", strconv.FormatBool(p.FallbackToDefault),
		"max_connections", p.MaxConnections,
		"pace_per_minute", p.PacePerMinute,
		"version", p.Version,
		"created_at", p.CreatedAt.Format(time.RFC3339Nano),
		"updated_at", p.UpdatedAt.Format(time.RFC3339Nano),
	}
	if p.RateLimit != nil {
		args = append(args, "rate_per_minute", p.RateLimit.PerMinute, "rate_per_day", p.RateLimit.PerDay)
	}
	if o := p.OAuth; o != nil {
		clientSecret, err := s.sealer.Seal([]byte(o.ClientSecret.Reveal()), secretAD(p.TenantID, "oauth_client_secret"))
		if err != nil {
			return Profile{}, fmt.Errorf("tenant: put %s: %w", p.TenantID, err)
		}
		refresh, err := s.sealer.Seal([]byte(o.RefreshToken.Reveal()), secretAD(p.TenantID, "oauth_refresh_token"))
		if err != nil {
			return Profile{}, fmt.Errorf("tenant: put %s: %w", p.TenantID, err)
		}
		args = append(args, "oauth_flow", o.Flow, "oauth_token_url", o.TokenURL, "oauth_client_id", o.ClientID,
			"oauth_scope", o.Scope, "oauth_directory_id", o.DirectoryID,
			"oauth_client_secret", clientSecret, "oauth_refresh_token", refresh)
	}
	if err := MarkKnown(ctx, s.rdb, p.TenantID); err != nil {
		return Profile{}, err
	}
	res, err := putScript.Run(ctx, s.rdb, []string{Key(p.TenantID)}, args...).Slice()
	if err != nil {
		return Profile{}, fmt.Errorf("tenant: put %s: %w", p.TenantID, err)
	}
	if res[0].(int64) != 1 {
		return Profile{}, ErrVersionConflict
	}
	s.changed(ctx, p.TenantID)
	s.emit(ctx, Change{TenantID: p.TenantID, Kind: ChangeProfile})
	return p, nil
}

var deleteScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'version')
if not cur then return 0 end
if ARGV[1] ~= '' and cur ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
return 1
`)

// Delete removes the profile; the tenant then uses the default relay.
// expectVersion 0 deletes whatever version is stored.
func (s *Store) Delete(ctx context.Context, tenantID string, expectVersion int64) (err error) {
	defer outage.Mark(&err)
	if !ValidID(tenantID) {
		return ErrInvalidID
	}
	expect := ""
	if expectVersion > 0 {
		expect = strconv.FormatInt(expectVersion, 10)
	}
	n, err := deleteScript.Run(ctx, s.rdb, []string{Key(tenantID)}, expect).Int()
	switch {
	case err != nil:
		return fmt.Errorf("tenant: delete %s: %w", tenantID, err)
	case n == 0:
		return ErrNotFound
	case n < 0:
		return ErrVersionConflict
	}
	s.changed(ctx, tenantID)
	s.emit(ctx, Change{TenantID: tenantID, Kind: ChangeDeleted})
	return nil
}

// setLastErrorScript records (or, with an empty ARGV[2], clears) the last
// error only on the version that caused it: a failure of an old password
// must not stick to the new one.
var setLastErrorScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], 'last_error')
else redis.call('HSET', KEYS[1], 'last_error', ARGV[2]) end
return 1
`)

// setRefreshScript stores a rotated refresh token on the version it was
// issued for, without making a new version: it is the same consent.
var setRefreshScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'oauth_refresh_token', ARGV[2])
return 1
`)

// SetRefreshToken stores the refresh token a provider rotated.
func (s *Store) SetRefreshToken(ctx context.Context, tenantID string, version int64, rt secret.String) (err error) {
	defer outage.Mark(&err)
	sealed, err := s.sealer.Seal([]byte(rt.Reveal()), secretAD(tenantID, "oauth_refresh_token"))
	if err != nil {
		return fmt.Errorf("tenant: refresh token %s: %w", tenantID, err)
	}
	stored, err := setRefreshScript.Run(ctx, s.rdb, []string{Key(tenantID)}, version, sealed).Int()
	if err != nil {
		return fmt.Errorf("tenant: refresh token %s: %w", tenantID, err)
	}
	s.changed(ctx, tenantID)
	if stored == 1 {
		s.emit(ctx, Change{TenantID: tenantID, Kind: ChangeGrant})
	}
	return nil
}

// SetLastError records e on the profile at version, or clears the record
// when e is nil. It does nothing when the profile has moved on.
func (s *Store) SetLastError(ctx context.Context, tenantID string, version int64, e *LastError) (err error) {
	defer outage.Mark(&err)
	val := ""
	if e != nil {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("tenant: last error: %w", err)
		}
		val = string(b)
	}
	stored, err := setLastErrorScript.Run(ctx, s.rdb, []string{Key(tenantID)}, version, val).Int()
	if err != nil {
		return fmt.Errorf("tenant: last error %s: %w", tenantID, err)
	}
	s.changed(ctx, tenantID)
	if e == nil && stored == 1 {
		s.emit(ctx, Change{TenantID: tenantID, Kind: ChangeRecovered})
	}
	return nil
}

func (s *Store) decode(tenantID string, h map[string]string) (Profile, error) {
	p := Profile{
		TenantID:          tenantID,
		Enabled:           h["enabled"] == "true",
		Provider:          h["provider"],
		SenderName:        h["sender_name"],
		Email:             h["email"],
		Username:          h["username"],
		Host:              h["host"],
		Security:          Security(h["security"]),
		Auth:              AuthMechanism(h["auth"]),
		FallbackToDefault: h["fallback_to_default"] == "true",
	}
	var err error
	bad := func(field string, e error) error {
		return fmt.Errorf("tenant: stored profile %s: %s: %w", tenantID, field, e)
	}
	if p.Port, err = strconv.Atoi(h["port"]); err != nil {
		return Profile{}, bad("port", err)
	}
	if p.Version, err = strconv.ParseInt(h["version"], 10, 64); err != nil {
		return Profile{}, bad("version", err)
	}
	if p.CreatedAt, err = time.Parse(time.RFC3339Nano, h["created_at"]); err != nil {
		return Profile{}, bad("created_at", err)
	}
	if p.UpdatedAt, err = time.Parse(time.RFC3339Nano, h["updated_at"]); err != nil {
		return Profile{}, bad("updated_at", err)
	}
	if p.MaxConnections, err = atoiOr0(h["max_connections"]); err != nil {
		return Profile{}, bad("max_connections", err)
	}
	if p.PacePerMinute, err = atoiOr0(h["pace_per_minute"]); err != nil {
		return Profile{}, bad("pace_per_minute", err)
	}
	if h["rate_per_minute"] != "" {
		p.RateLimit = new(RateLimit)
		if p.RateLimit.PerMinute, err = strconv.Atoi(h["rate_per_minute"]); err != nil {
			return Profile{}, bad("rate_per_minute", err)
		}
		if p.RateLimit.PerDay, err = strconv.Atoi(h["rate_per_day"]); err != nil {
			return Profile{}, bad("rate_per_day", err)
		}
	}
	if h["oauth_flow"] != "" {
		o := &OAuth{Flow: h["oauth_flow"], TokenURL: h["oauth_token_url"], ClientID: h["oauth_client_id"],
			Scope: h["oauth_scope"], DirectoryID: h["oauth_directory_id"]}
		for field, dst := range map[string]*secret.String{"oauth_client_secret": &o.ClientSecret, "oauth_refresh_token": &o.RefreshToken} {
			plain, err := s.sealer.Open(h[field], secretAD(tenantID, field))
			if err != nil {
				return Profile{}, bad(field, err)
			}
			*dst = secret.New(string(plain))
		}
		p.OAuth = o
	}
	if v := h["last_error"]; v != "" {
		p.LastError = new(LastError)
		if err := json.Unmarshal([]byte(v), p.LastError); err != nil {
			return Profile{}, bad("last_error", err)
		}
	}
	pw, err := s.sealer.Open(h["password"], passwordAD(tenantID))
	if err != nil {
		return Profile{}, bad("password", err)
	}
	p.Password = secret.New(string(pw))
	return p, nil
}

// atoiOr0 reads an optional number: fields added after a profile was
// written are absent from its hash.
func atoiOr0(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.Atoi(s)
}
