package redistest

import (
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// EachBackend runs fn once against a real redis-server and once against
// miniredis, the embedded Redis of `outbound dev`, so the same scripts and
// stream calls are known to work on both.
func EachBackend(t *testing.T, fn func(t *testing.T, rdb redis.UniversalClient)) {
	t.Run("redis-server", func(t *testing.T) {
		fn(t, Start(t).Client(t))
	})
	t.Run("miniredis", func(t *testing.T) {
		m := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { rdb.Close() })
		fn(t, rdb)
	})
}
