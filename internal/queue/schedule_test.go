package queue

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/redistest"
)

// Scheduled mail spends its tenant's rate windows when it falls due, not
// when it is accepted: of twenty messages due at once under five a
// minute, only what the window takes is moved, the others wait their
// turn at its pace, without spending an attempt or a second charge; a
// retry due beside them is not charged again, and another tenant's due
// messages move in the same pass.
func TestScheduledMailSpendsTheRateWhenDue(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		scheduledSpendsWhenDue(t, newQueue(t, rdb, 1), rdb)
	})
}

// The mover reads records and rate windows it was not handed as keys:
// they share the partition's hash slot, which Redis Cluster allows.
func TestScheduledMailSpendsTheRateWhenDueOnCluster(t *testing.T) {
	rdb := redistest.StartCluster(t, 3).Client(t)
	scheduledSpendsWhenDue(t, newQueue(t, rdb, 6), rdb)
}

func scheduledSpendsWhenDue(t *testing.T, q *Queue, rdb redis.UniversalClient) {
	const k, n = 5, 20 // a minute's allowance, and acme's scheduled messages
	interval := time.Minute / k
	limit := ratelimit.Limit{PerMinute: k, PerDay: 1000}
	ctx := context.Background()
	p := q.tenantPartition("acme")
	minute := ratelimit.TenantWindows("{q"+strconv.Itoa(p)+"}", "acme", limit)[0].Key

	// A message sent now spends at accept; deferred, it is a retry.
	now := msg("", "")
	now.Cost, now.Limit = 1, limit
	retried, err := q.Enqueue(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	e := readOne(t, q, "w")
	beginOne(ctx, q, e)
	if err := q.Finish(ctx, e, "acme", Outcome{Status: StatusDeferred, RetryIn: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	tat := tatOf(t, rdb, minute)

	sendAt := time.Now().Add(200 * time.Millisecond)
	acme := scheduleN(t, q, "acme", n, sendAt, limit)
	beta := scheduleN(t, q, "beta", 3, sendAt.Add(10*time.Millisecond), limit)
	if got := tatOf(t, rdb, minute); got != tat {
		t.Fatalf("scheduling spent the sending window: TAT %v -> %v", tat, got)
	}

	time.Sleep(time.Until(sendAt) + 50*time.Millisecond)
	movePass(t, q, 8) // fewer than are due: the pass must go on past acme's
	moved := streamIDs(t, q)
	want := append([]string{retried.ID}, acme[:k-1]...) // the retry took one of the k at accept
	want = append(want, beta...)
	if !sameSet(moved, want) {
		t.Fatalf("moved %v,\nwant %v", moved, want)
	}

	// Each waiting message is due when the window will have room for it,
	// one interval after the one before; it is still scheduled.
	waiting := acme[k-1:]
	moveTime := time.Now()
	for i, id := range waiting {
		score, err := rdb.ZScore(ctx, retryKey(p), id).Result()
		if err != nil {
			t.Fatalf("%s left the schedule: %v", id, err)
		}
		due := time.UnixMilli(int64(score))
		if wantDue := tat.Add(time.Duration(i) * interval); due.Sub(wantDue).Abs() > time.Millisecond {
			t.Errorf("waiting message %d due %v after the move, want %v", i, due.Sub(moveTime), wantDue.Sub(moveTime))
		}
		rec, _ := q.Get(ctx, id)
		if rec.Status != StatusScheduled || len(rec.Attempts) != 0 || !rec.NextAttemptAt.Equal(due) {
			t.Errorf("waiting message %d: %+v", i, rec)
		}
	}
	// Every scheduled message was charged once, the retry not again.
	if got, wantTAT := tatOf(t, rdb, minute), tat.Add(n*interval); !got.Equal(wantTAT) {
		t.Errorf("window TAT %v after the move, want %v (%d charges of %v)", got.Sub(tat), wantTAT.Sub(tat), n, interval)
	}
	// The reservations are the tenant's budget: mail sent now waits for it.
	if _, err := q.Enqueue(ctx, now); !errors.As(err, new(*ratelimit.DeniedError)) {
		t.Errorf("a message to send now beside the reservations: %v", err)
	}

	// Once due, a waiting message goes without a second charge.
	before := tatOf(t, rdb, minute)
	rdb.ZAdd(ctx, retryKey(p), redis.Z{Score: float64(time.Now().Add(-time.Second).UnixMilli()), Member: waiting[0]})
	if got, err := q.MoveDue(ctx, p, 10); err != nil || got != 1 {
		t.Fatalf("moved %d, %v; want the one due", got, err)
	}
	if after := tatOf(t, rdb, minute); !after.Equal(before) {
		t.Errorf("a reserved message was charged again: TAT moved by %v", after.Sub(before))
	}
	if got := streamIDs(t, q); !slices.Contains(got, waiting[0]) {
		t.Errorf("stream %v lacks %s", got, waiting[0])
	}
}

// scheduleN schedules n one-recipient messages of tenant at sendAt; all
// are accepted, whatever the sending window holds.
func scheduleN(t *testing.T, q *Queue, tenant string, n int, sendAt time.Time, limit ratelimit.Limit) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		m := msg("", "")
		m.TenantID, m.SendAt, m.Cost, m.Limit = tenant, sendAt, 1, limit
		a, err := q.Enqueue(context.Background(), m)
		if err != nil || a.Status != StatusScheduled {
			t.Fatalf("scheduling %s's message %d: %+v %v", tenant, i, a, err)
		}
		ids[i] = a.ID
	}
	return ids
}

// movePass moves due entries of every partition as the delivery service's
// mover does: again while a call handled limit of them.
func movePass(t *testing.T, q *Queue, limit int) {
	t.Helper()
	for p := range q.Partitions() {
		for {
			n, err := q.MoveDue(context.Background(), p, limit)
			if err != nil {
				t.Fatal(err)
			}
			if n < limit {
				break
			}
		}
	}
}

// streamIDs are the message ids of every partition's stream entries.
func streamIDs(t *testing.T, q *Queue) []string {
	t.Helper()
	var ids []string
	for p := range q.Partitions() {
		msgs, err := q.rdb.XRange(context.Background(), streamKey(p), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries(p, msgs) {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

// tatOf is a rate window's theoretical arrival time.
func tatOf(t *testing.T, rdb redis.UniversalClient, key string) time.Time {
	t.Helper()
	us, err := rdb.Get(context.Background(), key).Int64()
	if err != nil {
		t.Fatalf("window %s: %v", key, err)
	}
	return time.UnixMicro(us)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// What a tenant may schedule is bounded all the same: a day's allowance a
// day, refused past it with nothing stored.
func TestSchedulingSpendsTheDaysAllowance(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	q := newQueue(t, rdb, 1)
	limit := ratelimit.Limit{PerMinute: 1, PerDay: 3}
	scheduleN(t, q, "acme", 3, time.Now().Add(time.Hour), limit)
	m := msg("", "")
	m.SendAt, m.Cost, m.Limit = time.Now().Add(time.Hour), 1, limit
	a, err := q.Enqueue(context.Background(), m)
	var denied *ratelimit.DeniedError
	if !errors.As(err, &denied) || denied.Result.Limit != 3 {
		t.Fatalf("fourth scheduled message: %+v %v, want refused by the allowance of 3", a, err)
	}
	if n, _ := q.Depth(context.Background(), 0); n != 3 {
		t.Errorf("depth %d, want 3", n)
	}
}
