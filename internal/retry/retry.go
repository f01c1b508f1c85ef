// Package retry times retries: exponential backoff with jitter, and a
// sleep that ends with its context.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay is the wait before retry n (n ≥ 1): base doubled each time,
// capped at an hour (or at base, when that is longer), with ±20% jitter so
// that work that failed together does not return together.
func Delay(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	d = min(d, max(time.Hour, base))
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
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
