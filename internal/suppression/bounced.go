package suppression

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/outage"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// unlessBouncedScript writes (ARGV[2] not empty) or deletes one entry
// unless the entry there now came from a bounce, in one step, so a bounce
// recorded between a look and a write is never overwritten. It answers -1
// for a bounce entry, 0 when there was nothing to delete, 1 when done.
// KEYS: hash, index (see listScript). ARGV: address, entry JSON or "",
// the bounce source.
var unlessBouncedScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local ok, e = pcall(cjson.decode, old)
  if ok and type(e) == 'table' and e.source == ARGV[3] then return -1 end
elseif ARGV[2] == '' then
  return 0
end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
end
return 1
`)

// AddUnlessBounced is Add for a tenant's own admin: an address a hard
// bounce put on the list stays as the bounce recorded it (ErrBounced).
// Only the operator may replace or remove such entries: the bounce is the
// provider's word that the address does not exist, and sending to it again
// harms the sending reputation every tenant of a shared relay depends on.
func (s *Store) AddUnlessBounced(ctx context.Context, tenantID string, e Entry) (_ Entry, err error) {
	defer outage.Mark(&err)
	e = s.stamped(e)
	b, err := json.Marshal(e)
	if err != nil {
		return Entry{}, fmt.Errorf("suppression: %w", err)
	}
	if err := tenant.MarkKnown(ctx, s.rdb, tenantID); err != nil {
		return Entry{}, fmt.Errorf("suppression: add: %w", err)
	}
	if err := s.unlessBounced(ctx, tenantID, e.Email, string(b)); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// RemoveUnlessBounced is Remove for a tenant's own admin: an entry a hard
// bounce added stays (ErrBounced).
func (s *Store) RemoveUnlessBounced(ctx context.Context, tenantID, email string) (err error) {
	defer outage.Mark(&err)
	return s.unlessBounced(ctx, tenantID, norm(email), "")
}

func (s *Store) unlessBounced(ctx context.Context, tenantID, email, value string) error {
	n, err := unlessBouncedScript.Run(ctx, s.rdb, keys(tenantID), email, value, SourceBounce).Int()
	switch {
	case err != nil:
		return fmt.Errorf("suppression: write: %w", err)
	case n < 0:
		return ErrBounced
	case n == 0:
		return ErrNotFound
	}
	s.changed(ctx, tenantID)
	return nil
}
