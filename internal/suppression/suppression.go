// Package suppression keeps each tenant's list of addresses not to send
// to: recipients that hard-bounced (RFC 3463 5.1.x, the address does not
// exist) and ones an operator added. Sending to them again harms the
// tenant's reputation with its provider.
package suppression

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/cache"
	"github.com/outbound-mail/outbound/internal/coalesce"
)

// ErrNotFound means the address is not on the list.
var ErrNotFound = errors.New("suppression: address not on the list")

// ErrBounced means the address's entry was added by a hard bounce, which
// AddUnlessBounced and RemoveUnlessBounced leave alone.
var ErrBounced = errors.New("suppression: the address hard-bounced")

// SourceBounce marks an entry a hard bounce added.
const SourceBounce = "bounce"

// Entry is one suppressed address.
type Entry struct {
	Email     string    `json:"email"`
	Reason    string    `json:"reason"`
	Source    string    `json:"source"` // "bounce" or "manual"
	Code      string    `json:"code,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Store keeps the lists in Redis, one hash per tenant keyed by lower-cased
// address.
type Store struct {
	rdb   redis.UniversalClient
	now   func() time.Time
	sizes *cache.Cache[int64] // nil: Filter always asks Redis
	// lens reads the sizes of lists whose cached size is missing at the
	// same time (many tenants sending for the first time) in one pipeline.
	lens *coalesce.Group[string, int64]
}

// UseCache remembers each tenant's list size for up to ttl, so that
// messages of tenants with an empty list (most) cost no lookup.
func (s *Store) UseCache(ttl time.Duration) (stop func() error) {
	s.sizes = cache.New[int64](s.rdb, "outbound:suppressions-changed", ttl)
	return s.sizes.Close
}

func (s *Store) changed(ctx context.Context, tenantID string) {
	if s.sizes != nil {
		_ = s.sizes.Invalidate(ctx, tenantID)
	}
}

// New returns a store on rdb.
func New(rdb redis.UniversalClient) *Store {
	s := &Store{rdb: rdb, now: time.Now}
	s.lens = coalesce.New(64, s.sizesOf)
	return s
}

func (s *Store) sizesOf(ctx context.Context, tenantIDs []string) ([]int64, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(tenantIDs))
	for i, id := range tenantIDs {
		cmds[i] = pipe.HLen(ctx, key(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]int64, len(cmds))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

func key(tenantID string) string { return "outbound:supp:{" + tenantID + "}" }

func norm(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Add puts an address on the tenant's list (replacing an earlier entry).
func (s *Store) Add(ctx context.Context, tenantID string, e Entry) (Entry, error) {
	e = s.stamped(e)
	b, err := json.Marshal(e)
	if err != nil {
		return Entry{}, fmt.Errorf("suppression: %w", err)
	}
	if err := s.rdb.HSet(ctx, key(tenantID), e.Email, b).Err(); err != nil {
		return Entry{}, fmt.Errorf("suppression: add: %w", err)
	}
	s.changed(ctx, tenantID)
	return e, nil
}

// stamped is e as stored: its address lower-cased, its time set.
func (s *Store) stamped(e Entry) Entry {
	e.Email = norm(e.Email)
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	}
	return e
}

// Remove takes an address off the list.
func (s *Store) Remove(ctx context.Context, tenantID, email string) error {
	n, err := s.rdb.HDel(ctx, key(tenantID), norm(email)).Result()
	if err != nil {
		return fmt.Errorf("suppression: remove: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	s.changed(ctx, tenantID)
	return nil
}

// Get returns one entry.
func (s *Store) Get(ctx context.Context, tenantID, email string) (Entry, error) {
	v, err := s.rdb.HGet(ctx, key(tenantID), norm(email)).Result()
	if errors.Is(err, redis.Nil) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("suppression: get: %w", err)
	}
	var e Entry
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return Entry{}, fmt.Errorf("suppression: stored entry: %w", err)
	}
	return e, nil
}

// List returns the tenant's entries, sorted by address, up to limit after
// the address after (for paging).
func (s *Store) List(ctx context.Context, tenantID, after string, limit int) ([]Entry, error) {
	all, err := s.rdb.HGetAll(ctx, key(tenantID)).Result()
	if err != nil {
		return nil, fmt.Errorf("suppression: list: %w", err)
	}
	emails := make([]string, 0, len(all))
	for email := range all {
		if email > norm(after) {
			emails = append(emails, email)
		}
	}
	sort.Strings(emails)
	if len(emails) > limit {
		emails = emails[:limit]
	}
	out := make([]Entry, 0, len(emails))
	for _, email := range emails {
		var e Entry
		if json.Unmarshal([]byte(all[email]), &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// Filter returns which of emails are on the tenant's list, by address as
// given.
func (s *Store) Filter(ctx context.Context, tenantID string, emails []string) (map[string]Entry, error) {
	if len(emails) == 0 {
		return nil, nil
	}
	if s.sizes != nil {
		size, err := s.sizes.Get(ctx, tenantID, func(ctx context.Context) (int64, error) {
			return s.lens.Do(ctx, tenantID)
		})
		if err != nil {
			return nil, fmt.Errorf("suppression: size: %w", err)
		}
		if size == 0 {
			return nil, nil
		}
	}
	fields := make([]string, len(emails))
	for i, e := range emails {
		fields[i] = norm(e)
	}
	vals, err := s.rdb.HMGet(ctx, key(tenantID), fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("suppression: filter: %w", err)
	}
	var out map[string]Entry
	for i, v := range vals {
		sv, ok := v.(string)
		if !ok {
			continue
		}
		var e Entry
		if json.Unmarshal([]byte(sv), &e) != nil {
			continue
		}
		if out == nil {
			out = map[string]Entry{}
		}
		out[emails[i]] = e
	}
	return out, nil
}

// HardBounce reports whether an enhanced status code says the address
// does not exist or cannot receive mail for good (RFC 3463 X.1.x
// "addressing status", 5.1.1 bad destination mailbox being the usual).
func HardBounce(enhancedCode string) bool {
	return strings.HasPrefix(enhancedCode, "5.1.")
}
