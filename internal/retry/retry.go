// Package retry times retries: exponential backoff with jitter, and a
// sleep that ends with its context. It is the one place the shape of
// every backoff in the service is set (mail retries, webhook retries,
// Redis write retries).
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay is the wait before retry n (n ≥ 1): Backoff with a random jitter,
// so that work that failed together does not return together.
func Delay(base time.Duration, n int) time.Duration {
	return Backoff(base, n, rand.Float64())
}

// Backoff is the wait before retry n (n ≥ 1): base doubled each time,
// capped at an hour (or at base, when that is longer), then spread ±20%
// by jitter, a number in [0, 1) (0 gives 80% of the wait, 0.5 all of it).
// It is Delay for callers that must decide without drawing at random.
func Backoff(base time.Duration, n int, jitter float64) time.Duration {
	d := base
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	d = min(d, max(time.Hour, base))
	return time.Duration(float64(d) * (0.8 + 0.4*jitter))
}

// Sleep waits d, reporting false when ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
