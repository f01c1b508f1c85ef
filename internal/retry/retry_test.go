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
