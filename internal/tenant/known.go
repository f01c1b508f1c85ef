package tenant

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/outage"
)

// knownKey is the sorted set of the tenants that have, or had, a profile,
// a sending status or a suppression: one key (its own slot), all scored 0
// so ordered by id. It is written before what it records, so nothing of a
// tenant exists that the set does not name; it is not trimmed (tenants are
// few next to messages: one stays listed once known). The tenants that
// queued mail are known to the queue (queue.KnownTenants); an operator's
// listing of tenants merges the two.
const knownKey = "outbound:tenants"

// MarkKnown adds tenantID to the known tenants.
func MarkKnown(ctx context.Context, rdb redis.Cmdable, tenantID string) (err error) {
	defer outage.Mark(&err)
	if err := rdb.ZAdd(ctx, knownKey, redis.Z{Member: tenantID}).Err(); err != nil {
		return fmt.Errorf("tenant: mark %s known: %w", tenantID, err)
	}
	return nil
}

// Known returns up to limit known tenant ids, in byte order, after after.
func (s *Store) Known(ctx context.Context, after string, limit int) (_ []string, err error) {
	defer outage.Mark(&err)
	lower := "-"
	if after != "" {
		lower = "(" + after
	}
	ids, err := s.rdb.ZRangeByLex(ctx, knownKey, &redis.ZRangeBy{Min: lower, Max: "+", Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("tenant: known tenants: %w", err)
	}
	return ids, nil
}
