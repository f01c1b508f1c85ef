package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/queue"
)

func parkedEntry(id string, payload int) queue.Started {
	return queue.Started{Entry: queue.Entry{StreamID: id}, Record: queue.Record{Payload: make([]byte, payload)}}
}

// nextNow takes what is ready, failing if nothing is or if it comes in
// turn (a session freed for it) other than as wanted.
func nextNow(t *testing.T, k *parking, inTurn bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	j, ok := k.next(ctx)
	if !ok {
		t.Fatal("nothing was handed back")
	}
	if j.inTurn != inTurn {
		t.Errorf("%s handed back in turn %v, want %v", j.st.StreamID, j.inTurn, inTurn)
	}
	return j.st.StreamID
}

// Messages kept aside go back one per session freed, their tenants taking
// turns: a backlog of one tenant holds another's message back by a turn.
func TestParkingReleasesPerSessionTenantsInTurn(t *testing.T) {
	k := newParking()
	for _, id := range []string{"bulk1", "bulk2", "bulk3"} {
		k.add("relay", "bulk", parkedEntry(id, 10))
	}
	k.add("relay", "quiet", parkedEntry("quiet1", 10))
	k.add("other", "bulk", parkedEntry("other1", 10))

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if _, ok := k.next(ctx); ok {
		t.Fatal("handed back before any session was free")
	}
	cancel()
	var order []string
	for range 4 {
		k.release("relay")
		order = append(order, nextNow(t, k, true))
	}
	if want := []string{"bulk1", "quiet1", "bulk2", "bulk3"}; !equal(order, want) {
		t.Fatalf("released %v, want %v", order, want)
	}
	k.release("relay") // nothing left there: a no-op
	k.release("other")
	if got := nextNow(t, k, true); got != "other1" {
		t.Fatalf("other account released %s", got)
	}
	if k.bytes != 0 || len(k.accounts) != 0 {
		t.Fatalf("after all went back: %d bytes, %d accounts", k.bytes, len(k.accounts))
	}
}

func TestParkingExpiresAndIsBounded(t *testing.T) {
	k := newParking()
	if !k.add("a", "t", parkedEntry("big", parkBytes-2*parkOverhead)) {
		t.Fatal("big refused")
	}
	if k.add("a", "t", parkedEntry("over", 1)) {
		t.Fatal("kept past the memory bound")
	}
	if !k.add("b", "t", parkedEntry("old", 0)) {
		t.Fatal("old refused within the bound")
	}
	k.expire(time.Now().Add(time.Second))
	got := map[string]bool{nextNow(t, k, false): true, nextNow(t, k, false): true}
	if !got["big"] || !got["old"] {
		t.Fatalf("expired %v", got)
	}
	k.add("a", "t", parkedEntry("left", 0))
	if left := k.close(); len(left) != 1 || left[0].StreamID != "left" {
		t.Fatalf("close gave back %v", left)
	}
	if k.add("a", "t", parkedEntry("late", 0)) {
		t.Fatal("kept after close")
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
