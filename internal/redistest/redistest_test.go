package redistest

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStopRestartKeepsAOFData(t *testing.T) {
	s := Start(t, WithAOF())
	ctx := context.Background()
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// appendfsync everysec: force the write out before the stop.
	if err := c.Do(ctx, "BGREWRITEAOF").Err(); err != nil {
		t.Fatal(err)
	}
	s.Stop(t)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered while the server was stopped")
	}
	s.Restart(t)
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after restart GET = %q, %v", v, err)
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t, 3)
	cc := c.Client(t)
	ctx := context.Background()
	// Keys that hash to different slots land on different masters.
	for i := range 30 {
		if err := cc.Set(ctx, "key-"+string(rune('a'+i)), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var masters atomic.Int32 // ForEachMaster runs concurrently
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		if m.DBSize(ctx).Val() > 0 {
			masters.Add(1)
		}
		return nil
	})
	if err != nil || masters.Load() != 3 {
		t.Fatalf("keys on %d masters, want 3 (%v)", masters.Load(), err)
	}
}
