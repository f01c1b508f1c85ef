package delivery

import (
	"testing"
	"time"
)

func TestCircuitOpensAfterFailuresInARow(t *testing.T) {
	cs := newCircuits()
	now := time.Unix(1e9, 0)
	for i := 1; i < circuitThreshold; i++ {
		if _, opened := cs.failed("a", now, 0); opened {
			t.Fatalf("opened after %d failures", i)
		}
	}
	until, opened := cs.failed("a", now, 0)
	if !opened || until != now.Add(circuitBase) {
		t.Fatalf("after %d failures: opened=%v until %v", circuitThreshold, opened, until)
	}
	if _, open := cs.open("a", now.Add(circuitBase-time.Second)); !open {
		t.Fatal("closed before its time")
	}
	if _, open := cs.open("b", now); open {
		t.Fatal("another account's circuit is open")
	}
	if cs.count(now) != 1 {
		t.Fatalf("count = %d", cs.count(now))
	}
	// The probe after it fails: open again at once, twice as long.
	later := now.Add(circuitBase)
	if until, opened := cs.failed("a", later, 0); !opened || until != later.Add(2*circuitBase) {
		t.Fatalf("failed probe: opened=%v until %v", opened, until)
	}
	// Doubling stops at the cap.
	for range 20 {
		cs.failed("a", later, 0)
	}
	if until, _ := cs.failed("a", later, 0); until != later.Add(circuitMax) {
		t.Fatalf("until %v, want the cap %v", until.Sub(later), circuitMax)
	}
	cs.succeeded("a")
	if _, open := cs.open("a", later); open || cs.any() {
		t.Fatal("a success left the circuit open")
	}
	if _, opened := cs.failed("a", later, 0); opened {
		t.Fatal("one failure after a success reopened it")
	}
}

// A circuit another replica opened (read from the profile) doubles on this
// replica's failed probe, not after threshold failures of its own.
func TestCircuitProbeOfAnotherReplicasOpening(t *testing.T) {
	cs := newCircuits()
	now := time.Unix(1e9, 0)
	until, opened := cs.failed("a", now, time.Minute)
	if !opened || until != now.Add(2*time.Minute) {
		t.Fatalf("opened=%v until %v", opened, until.Sub(now))
	}
}

func TestAsidesTakeTurnsPerTenant(t *testing.T) {
	a := newAsides()
	now := time.Unix(1e9, 0)
	step := 10 * time.Millisecond
	var bulk []time.Duration
	for range 5 {
		bulk = append(bulk, a.delay("relay", "bulk", step, now))
	}
	for i, d := range bulk {
		if want := time.Duration(i+1) * step; d != want {
			t.Fatalf("bulk message %d waits %v, want %v (one spacing after the last)", i, d, want)
		}
	}
	// Another tenant on the same account is not queued behind the bulk
	// tenant's five: it waits a turn (two lines share the account).
	if d := a.delay("relay", "quiet", step, now); d != 2*step {
		t.Fatalf("quiet tenant waits %v behind a backlog, want %v", d, 2*step)
	}
	// Another account has its own lines.
	if d := a.delay("other", "bulk", step, now); d != step {
		t.Fatalf("other account: %v", d)
	}
	// Once a line's messages are all due it is forgotten.
	if d := a.delay("relay", "quiet", step, now.Add(time.Minute)); d != step {
		t.Fatalf("after the lines ran out: %v", d)
	}
	// The wait is bounded.
	if d := a.delay("relay", "bulk", time.Hour, now); d != maxAside {
		t.Fatalf("wait %v, want the bound %v", d, maxAside)
	}
}
