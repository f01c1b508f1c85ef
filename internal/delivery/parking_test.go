package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/queue"
)

func parkedAt(id string, due time.Time, size int) parked {
	return parked{st: queue.Started{Entry: queue.Entry{StreamID: id}}, due: due, size: size}
}

func TestParkingHandsBackInDueOrder(t *testing.T) {
	k := newParking()
	now := time.Now()
	for _, p := range []parked{parkedAt("late", now.Add(60*time.Millisecond), 1), parkedAt("soon", now.Add(20*time.Millisecond), 1),
		parkedAt("now", now, 1)} {
		if !k.add(p) {
			t.Fatalf("%s refused", p.st.StreamID)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var order []string
	for range 3 {
		p, ok := k.next(ctx)
		if !ok {
			t.Fatal("next ended early")
		}
		if time.Now().Before(p.due) {
			t.Fatalf("%s handed back %v before it was due", p.st.StreamID, time.Until(p.due))
		}
		order = append(order, p.st.StreamID)
	}
	if order[0] != "now" || order[1] != "soon" || order[2] != "late" {
		t.Fatalf("order %v", order)
	}
	// A message added while next waits wakes it.
	go func() {
		time.Sleep(20 * time.Millisecond)
		k.add(parkedAt("added", time.Now(), 1))
	}()
	if p, ok := k.next(ctx); !ok || p.st.StreamID != "added" {
		t.Fatalf("next after an add: %v %v", p.st.StreamID, ok)
	}
}

func TestParkingIsBoundedAndCloses(t *testing.T) {
	k := newParking()
	far := time.Now().Add(time.Hour)
	if !k.add(parkedAt("a", far, parkBytes-10)) {
		t.Fatal("a refused")
	}
	if k.add(parkedAt("b", far, 11)) {
		t.Fatal("b kept past the memory bound")
	}
	if !k.add(parkedAt("c", far, 10)) {
		t.Fatal("c refused within the bound")
	}
	left := k.close()
	if len(left) != 2 {
		t.Fatalf("close gave back %d, want 2", len(left))
	}
	if k.add(parkedAt("d", far, 1)) {
		t.Fatal("kept after close")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := k.next(ctx); ok {
		t.Fatal("next after its context ended")
	}
}
