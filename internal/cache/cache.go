// Package cache keeps values read from Redis in a replica's memory and
// drops them when any replica changes them: writers call Invalidate, which
// evicts locally at once and publishes the key on a Redis channel every
// replica listens to. A TTL bounds staleness should a notice be missed
// (a replica reconnecting to Redis, say).
package cache

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cache maps keys to values of type V.
type Cache[V any] struct {
	rdb     redis.UniversalClient
	channel string
	ttl     time.Duration

	mu    sync.Mutex
	items map[string]item[V]
	gen   map[string]uint64 // bumped by each invalidation, so a load racing one is not stored
	sub   *redis.PubSub
	done  chan struct{}
}

type item[V any] struct {
	v       V
	expires time.Time
}

// New starts a cache whose invalidations travel on channel.
func New[V any](rdb redis.UniversalClient, channel string, ttl time.Duration) *Cache[V] {
	c := &Cache[V]{rdb: rdb, channel: channel, ttl: ttl, items: map[string]item[V]{}, gen: map[string]uint64{},
		done: make(chan struct{})}
	c.sub = rdb.Subscribe(context.Background(), channel)
	go c.listen()
	return c
}

func (c *Cache[V]) listen() {
	defer close(c.done)
	for msg := range c.sub.Channel() {
		c.evict(msg.Payload)
	}
}

func (c *Cache[V]) evict(key string) {
	c.mu.Lock()
	delete(c.items, key)
	c.gen[key]++
	c.mu.Unlock()
}

// Get returns the cached value for key, or loads and caches it.
func (c *Cache[V]) Get(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	now := time.Now()
	c.mu.Lock()
	it, ok := c.items[key]
	gen := c.gen[key]
	c.mu.Unlock()
	if ok && now.Before(it.expires) {
		return it.v, nil
	}
	v, err := load(ctx)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.gen[key] == gen { // no invalidation while loading
		if len(c.items) > 100_000 { // bound memory with many tenants: start over
			c.items = map[string]item[V]{}
		}
		c.items[key] = item[V]{v: v, expires: now.Add(c.ttl)}
	}
	c.mu.Unlock()
	return v, nil
}

// Forget drops key here only: for a replica that learnt of a change some
// other way before the cache's own notice came.
func (c *Cache[V]) Forget(key string) { c.evict(key) }

// Invalidate drops key here and on every other replica.
func (c *Cache[V]) Invalidate(ctx context.Context, key string) error {
	c.evict(key)
	return c.rdb.Publish(ctx, c.channel, key).Err()
}

// Close stops listening.
func (c *Cache[V]) Close() error {
	err := c.sub.Close()
	<-c.done
	return err
}
