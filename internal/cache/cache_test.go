package cache

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

func TestCacheInvalidatesAcrossReplicas(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		a := New[string](rdb, "test:changes", time.Minute)
		b := New[string](rdb, "test:changes", time.Minute)
		defer a.Close()
		defer b.Close()
		var loads atomic.Int32
		value := "v1"
		load := func(context.Context) (string, error) { loads.Add(1); return value, nil }

		for range 3 {
			if v, _ := a.Get(ctx, "acme", load); v != "v1" {
				t.Fatalf("got %q", v)
			}
		}
		b.Get(ctx, "acme", load)
		if loads.Load() != 2 {
			t.Fatalf("%d loads for two replicas, want 2", loads.Load())
		}
		value = "v2"
		if err := b.Invalidate(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		if v, _ := b.Get(ctx, "acme", load); v != "v2" {
			t.Fatalf("the writer's replica still has %q", v)
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			if v, _ := a.Get(ctx, "acme", load); v == "v2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the other replica never dropped the old value")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func TestCacheExpires(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	c := New[int](rdb, "test:ttl", 50*time.Millisecond)
	defer c.Close()
	n := 0
	load := func(context.Context) (int, error) { n++; return n, nil }
	c.Get(context.Background(), "k", load)
	if v, _ := c.Get(context.Background(), "k", load); v != 1 {
		t.Fatal("not cached")
	}
	time.Sleep(60 * time.Millisecond)
	if v, _ := c.Get(context.Background(), "k", load); v != 2 {
		t.Fatal("not expired")
	}
}
