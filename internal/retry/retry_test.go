package retry

import (
	"context"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	for n := 1; n <= 12; n++ {
		d := Delay(30*time.Second, n)
		want := min(30*time.Second<<(n-1), time.Hour)
		if d < want*8/10 || d > want*12/10 {
			t.Errorf("Delay(30s, %d) = %v, want %v ±20%%", n, d, want)
		}
	}
	if d := Delay(2*time.Hour, 3); d < 96*time.Minute || d > 144*time.Minute {
		t.Errorf("a base above the cap: %v", d)
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep reported a cancel")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) || time.Since(start) > time.Second {
		t.Error("Sleep did not end with its context")
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		base   time.Duration
		n      int
		jitter float64
		want   time.Duration
	}{
		{"the first retry waits base", 30 * time.Second, 1, 0.5, 30 * time.Second},
		{"each retry doubles the wait", 30 * time.Second, 3, 0.5, 2 * time.Minute},
		{"the wait stops at an hour", 30 * time.Second, 12, 0.5, time.Hour},
		{"a base above an hour is the cap", 2 * time.Hour, 3, 0.5, 2 * time.Hour},
		{"jitter 0 takes a fifth off", 30 * time.Second, 2, 0, 48 * time.Second},
		{"jitter near 1 adds a fifth", 30 * time.Second, 2, 0.999999, 72 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Backoff(tc.base, tc.n, tc.jitter)
			if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("Backoff(%v, %d, %v) = %v, want %v", tc.base, tc.n, tc.jitter, got, tc.want)
			}
		})
	}
}
