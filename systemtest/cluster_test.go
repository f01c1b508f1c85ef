package systemtest

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// TestPipelineOnRedisCluster runs the send pipeline and the limiter on a
// real three-master Redis Cluster: every script keeps its keys in one hash
// slot, and the queue's partitions spread over the shards.
func TestPipelineOnRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	s := newSendSetup(t, smtptest.Options{}, func(o *options) {
		o.cluster, o.partitions = cluster, 6
		o.rateLimit = ratelimit.Limit{PerMinute: 20, PerDay: 1000}
	})
	roomy := map[string]int{"per_minute": 1000, "per_day": 100000} // acme's own, above the default 20
	s.putProfile(t, map[string]any{"rate_limit": roomy})

	var ids []string
	for i := range 10 {
		r := s.post(t, invoice(), "Idempotency-Key", "inv-"+strconv.Itoa(i))
		if r.status != http.StatusAccepted || r.json(t)["route"] != "tenant" {
			t.Fatalf("tenant message %d: %d %s", i, r.status, r.body)
		}
		ids = append(ids, r.json(t)["id"].(string))
		d := oneRecipient("beta")
		ids = append(ids, s.accept(t, d))
	}
	if r := s.post(t, invoice(), "Idempotency-Key", "inv-3"); r.status != http.StatusOK || r.json(t)["id"] != ids[6] {
		t.Fatalf("replay on the cluster: %d %s", r.status, r.body)
	}
	for _, id := range ids {
		s.waitStatus(t, id, "sent")
	}
	if len(s.account.Messages()) != 10 || len(s.relay.Messages()) != 10 {
		t.Fatalf("tenant account got %d, relay %d; want 10 and 10", len(s.account.Messages()), len(s.relay.Messages()))
	}

	for i := range 20 {
		if r := s.post(t, oneRecipient("gamma")); r.status != http.StatusAccepted {
			t.Fatalf("gamma %d: %d", i, r.status)
		}
	}
	if r := s.post(t, oneRecipient("gamma")); r.status != http.StatusTooManyRequests {
		t.Fatalf("limiter on the cluster: %d", r.status)
	}

	// A refused login holds messages on several partitions; the fixing PUT
	// wakes them on every shard.
	s.putProfile(t, map[string]any{"password": "wrong", "rate_limit": roomy})
	var held []string
	for range 4 {
		held = append(held, s.accept(t, invoice()))
	}
	for _, id := range held {
		s.waitStatus(t, id, "deferred")
	}
	s.putProfile(t, map[string]any{"password": tenantPass, "rate_limit": roomy})
	for _, id := range held {
		s.waitStatus(t, id, "sent")
	}

	var shards atomic.Int32
	err := cluster.Client(t).ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		if keys, _ := m.Keys(ctx, "outbound:*").Result(); len(keys) > 0 {
			shards.Add(1)
		}
		return nil
	})
	if err != nil || shards.Load() < 2 {
		t.Errorf("Outbound's keys are on %d of 3 shards (%v)", shards.Load(), err)
	}
}
