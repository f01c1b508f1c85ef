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
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/cache"
	"github.com/outbound-mail/outbound/internal/coalesce"
	"github.com/outbound-mail/outbound/internal/outage"
	"github.com/outbound-mail/outbound/internal/tenant"
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
// address, and beside it a sorted set of the same addresses (all scored 0,
// so ordered by bytes) that List pages through without reading the hash
// whole. Both keys carry the tenant's hash tag and every write changes
// both in one script.
//
// Entries do not expire. A hard bounce is the provider's word that the
// address does not exist; sending to it again, however long after, is what
// Gmail and Microsoft count against a sender. A manual entry is someone's
// request to stop, which does not lapse either. A list grows only by
// addresses the tenant really sent to that bounced, or that were added by
// hand, and is removed entry by entry through the API.
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

// indexKey is the sorted set of the addresses in key(tenantID).
func indexKey(tenantID string) string { return key(tenantID) + ":by-address" }

func keys(tenantID string) []string { return []string{key(tenantID), indexKey(tenantID)} }

// putScript writes one entry and its place in the index.
// KEYS: hash, index. ARGV: address, entry JSON.
var putScript = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
`)

// removeScript deletes one entry and its place in the index; it answers
// how many entries it removed. KEYS: hash, index. ARGV: address.
var removeScript = redis.NewScript(`
local n = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
`)

func norm(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Add puts an address on the tenant's list (replacing an earlier entry).
func (s *Store) Add(ctx context.Context, tenantID string, e Entry) (_ Entry, err error) {
	defer outage.Mark(&err)
	e = s.stamped(e)
	b, err := json.Marshal(e)
	if err != nil {
		return Entry{}, fmt.Errorf("suppression: %w", err)
	}
	// The tenant is known before it has a list (see tenant.MarkKnown).
	if err := tenant.MarkKnown(ctx, s.rdb, tenantID); err != nil {
		return Entry{}, fmt.Errorf("suppression: add: %w", err)
	}
	if err := putScript.Run(ctx, s.rdb, keys(tenantID), e.Email, string(b)).Err(); err != nil {
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
func (s *Store) Remove(ctx context.Context, tenantID, email string) (err error) {
	defer outage.Mark(&err)
	n, err := removeScript.Run(ctx, s.rdb, keys(tenantID), norm(email)).Int64()
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
func (s *Store) Get(ctx context.Context, tenantID, email string) (_ Entry, err error) {
	defer outage.Mark(&err)
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

// listScript reads one page: the addresses after ARGV[1] from the index,
// then their entries, so a page costs its own size however long the list.
// An index that does not hold exactly the hash's addresses (a list written
// before the index existed, or by an older replica during an upgrade) is
// built again from the hash first, once; writes keep it whole after that.
// Since writes add to both keys or neither, equal sizes mean equal sets;
// an address the index has and the hash lacks shows up as a missing entry
// and sends the page through a rebuild too.
// KEYS: hash, index. ARGV: after ("" for the start), limit.
var listScript = redis.NewScript(`
local function rebuild()
  redis.call('DEL', KEYS[2])
  local emails = redis.call('HKEYS', KEYS[1])
  for i = 1, #emails, 500 do
    local args = {}
    for j = i, math.min(i + 499, #emails) do
      args[#args + 1] = 0
      args[#args + 1] = emails[j]
    end
    redis.call('ZADD', KEYS[2], unpack(args))
  end
end
local function page()
  local min = '-'
  if ARGV[1] ~= '' then min = '(' .. ARGV[1] end
  local emails = redis.call('ZRANGEBYLEX', KEYS[2], min, '+', 'LIMIT', 0, tonumber(ARGV[2]))
  if #emails == 0 then return {} end
  local vals = redis.call('HMGET', KEYS[1], unpack(emails))
  for i = 1, #emails do
    if not vals[i] then return nil end
  end
  return vals
end
if redis.call('ZCARD', KEYS[2]) ~= redis.call('HLEN', KEYS[1]) then rebuild() end
local vals = page()
if not vals then
  rebuild()
  vals = page()
end
return vals
`)

// List returns the tenant's entries, sorted by address (bytewise, as
// stored: lower-cased), up to limit after the address after (for paging).
// A page reads only its own entries, and an address present throughout a
// walk of pages is on exactly one page, whatever is added or removed
// meanwhile.
func (s *Store) List(ctx context.Context, tenantID, after string, limit int) (_ []Entry, err error) {
	defer outage.Mark(&err)
	vals, err := listScript.Run(ctx, s.rdb, keys(tenantID), norm(after), limit).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("suppression: list: %w", err)
	}
	out := make([]Entry, 0, len(vals))
	for _, v := range vals {
		var e Entry
		if json.Unmarshal([]byte(v), &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// Filter returns which of emails are on the tenant's list, by address as
// given.
func (s *Store) Filter(ctx context.Context, tenantID string, emails []string) (_ map[string]Entry, err error) {
	defer outage.Mark(&err)
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
