package queue

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// retentionQueue is a queue whose records are kept one second after their
// final outcome: any record that expires before it should shows at once.
func retentionQueue(t *testing.T, rdb redis.UniversalClient, partitions int) *Queue {
	t.Helper()
	q := New(rdb, Options{Partitions: partitions, Retention: time.Second, IdempotencyTTL: 24 * time.Hour})
	if err := q.EnsureGroups(context.Background()); err != nil {
		t.Fatal(err)
	}
	return q
}

// ttlOf is the record's time to live; it fails the test when the record
// is gone or kept for good.
func ttlOf(t *testing.T, rdb redis.UniversalClient, id string) time.Duration {
	t.Helper()
	p, _ := partitionOf(id)
	ttl, err := rdb.PTTL(context.Background(), recordKey(p, id)).Result()
	if err != nil || ttl < 0 {
		t.Fatalf("record %s: TTL %v (%v): gone or without expiry", id, ttl, err)
	}
	return ttl
}

// makeDue puts a message in the retry set due now, as if its time had
// come (Redis's clock cannot be moved ten days on).
func makeDue(t *testing.T, rdb redis.UniversalClient, id string) {
	t.Helper()
	p, _ := partitionOf(id)
	if err := rdb.ZAdd(context.Background(), retryKey(p), redis.Z{Score: float64(time.Now().UnixMilli() - 1), Member: id}).Err(); err != nil {
		t.Fatal(err)
	}
}

// A record lives while its message does: scheduled ten days ahead, or
// deferred or held (a paused tenant's) for longer than the retention, it
// is kept until it is due and the retention after; the retention counts
// from the final outcome: sent, failed, suppressed or cancelled.
func TestRecordsLiveWhileTheirMessagesDo(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		recordsLiveWhileTheirMessagesDo(t, retentionQueue(t, rdb, 1), rdb)
	})
}

func TestRecordsLiveWhileTheirMessagesDoOnCluster(t *testing.T) {
	rdb := redistest.StartCluster(t, 3).Client(t)
	recordsLiveWhileTheirMessagesDo(t, retentionQueue(t, rdb, 6), rdb)
}

func recordsLiveWhileTheirMessagesDo(t *testing.T, q *Queue, rdb redis.UniversalClient) {
	ctx := context.Background()
	tenDays := 10 * 24 * time.Hour
	m := msg("", "")
	m.SendAt = time.Now().Add(tenDays)
	scheduled, err := q.Enqueue(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if ttl := ttlOf(t, rdb, scheduled.ID); ttl < tenDays {
		t.Fatalf("scheduled 10 days ahead, record TTL %v: it would expire before it is due", ttl)
	}
	cancelled, _ := q.Enqueue(ctx, m)

	// Deferred for ten days, and held for a paused tenant: the same.
	outcomes := map[string]Outcome{
		"deferred": {Status: StatusDeferred, RetryIn: tenDays},
		"held":     {Status: StatusQueued, RetryIn: tenDays, HoldForTenant: true},
	}
	waiting := map[string]string{}
	for name, out := range outcomes {
		a, err := q.Enqueue(ctx, msg("", ""))
		if err != nil {
			t.Fatal(err)
		}
		e := readOne(t, q, "w")
		if e.ID != a.ID {
			t.Fatalf("read %s, want %s", e.ID, a.ID)
		}
		beginOne(ctx, q, e)
		if err := q.Finish(ctx, e, "acme", out); err != nil {
			t.Fatal(err)
		}
		if ttl := ttlOf(t, rdb, a.ID); ttl < tenDays {
			t.Errorf("%s for 10 days, record TTL %v", name, ttl)
		}
		waiting[name] = a.ID
	}
	// The tenant's held set, which resuming it wakes, lives as long.
	if ttl := rdb.PTTL(ctx, heldKey(q.tenantPartition("acme"), "acme")).Val(); ttl < tenDays {
		t.Errorf("held set TTL %v: a resume after it would not wake the held message", ttl)
	}

	// Due at last: sent, and kept for the retention from then.
	makeDue(t, rdb, scheduled.ID)
	movePass(t, q, 10)
	e := readOne(t, q, "w")
	if _, ok, err := beginOne(ctx, q, e); !ok || err != nil || e.ID != scheduled.ID {
		t.Fatalf("due message %s not begun: %v %v", e.ID, ok, err)
	}
	if err := q.Finish(ctx, e, "acme", Outcome{Status: StatusSent}); err != nil {
		t.Fatal(err)
	}
	if ttl := ttlOf(t, rdb, scheduled.ID); ttl > time.Second {
		t.Errorf("sent, record TTL %v, want the retention (1s)", ttl)
	}
	// Failed after waiting: the same.
	makeDue(t, rdb, waiting["deferred"])
	movePass(t, q, 10)
	e = readOne(t, q, "w")
	beginOne(ctx, q, e)
	if err := q.Finish(ctx, e, "acme", Outcome{Status: StatusFailed, Error: "gave up"}); err != nil {
		t.Fatal(err)
	}
	if ttl := ttlOf(t, rdb, e.ID); ttl > time.Second {
		t.Errorf("failed, record TTL %v, want the retention", ttl)
	}
	if err := q.Cancel(ctx, cancelled.ID); err != nil {
		t.Fatal(err)
	}
	if ttl := ttlOf(t, rdb, cancelled.ID); ttl > time.Second {
		t.Errorf("cancelled, record TTL %v, want the retention", ttl)
	}
}

// A message whose record is gone when its delivery begins (evicted,
// deleted, or expired under an older replica's rules) is not dropped
// without a word: Begin records it failed as record_missing, writes a
// message.failed event, counts it, and says so in its error.
func TestMissingRecordFailsWithAnEvent(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		missingRecordFails(t, retentionQueue(t, rdb, 2), rdb)
	})
}

func TestMissingRecordFailsWithAnEventOnCluster(t *testing.T) {
	rdb := redistest.StartCluster(t, 3).Client(t)
	missingRecordFails(t, retentionQueue(t, rdb, 6), rdb)
}

func missingRecordFails(t *testing.T, q *Queue, rdb redis.UniversalClient) {
	ctx := context.Background()
	now, _ := q.Enqueue(ctx, msg("", ""))
	later := msg("", "")
	later.SendAt = time.Now().Add(time.Hour)
	scheduled, _ := q.Enqueue(ctx, later)
	for i, id := range []string{now.ID, scheduled.ID} {
		p, _ := partitionOf(id)
		if err := rdb.Del(ctx, recordKey(p, id)).Err(); err != nil {
			t.Fatal(err)
		}
		if id == scheduled.ID {
			makeDue(t, rdb, id)
			movePass(t, q, 10)
		}
		e := readOne(t, q, "w")
		started, err := q.Begin(ctx, []Entry{e})
		if len(started) != 0 || !errors.Is(err, ErrRecordMissing) || !strings.Contains(err.Error(), id) {
			t.Fatalf("begin without a record: %v, %v", started, err)
		}
		rec, err := q.Get(ctx, id)
		if err != nil || rec.Status != StatusFailed || !strings.HasPrefix(rec.Error, "record_missing: ") || rec.CreatedAt.IsZero() {
			t.Fatalf("record of a message whose record was gone: %+v %v", rec, err)
		}
		if ttl := ttlOf(t, rdb, id); ttl > time.Second {
			t.Errorf("failed record kept %v, want the retention", ttl)
		}
		if n := q.RecordsMissing(); n != uint64(i+1) {
			t.Errorf("records missing counted %d, want %d", n, i+1)
		}
		if pending, _ := rdb.XPending(ctx, streamKey(e.Partition), group).Result(); pending.Count != 0 {
			t.Errorf("entry left pending: %+v", pending)
		}
		evs, err := rdb.XRange(ctx, eventsKey(p), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, ev := range toEvents(p, evs) {
			if ev.MessageID == id {
				found = ev.Type == "message.failed" && !ev.CreatedAt.IsZero() &&
					strings.Contains(string(ev.Attempt), `"error":"record_missing"`)
			}
		}
		if !found {
			t.Errorf("no message.failed event with record_missing for %s: %v", id, evs)
		}
	}
}

// Records an older replica wrote expire the retention after accept, even
// when due later. The mover finds them in the retry set and makes them
// live until they are due and the retention after; a due one it moves
// gets the retention from then.
func TestOlderReplicasRecordsAreKeptUntilDue(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		olderRecordsKept(t, retentionQueue(t, rdb, 1), rdb)
	})
}

func TestOlderReplicasRecordsAreKeptUntilDueOnCluster(t *testing.T) {
	rdb := redistest.StartCluster(t, 3).Client(t)
	olderRecordsKept(t, retentionQueue(t, rdb, 6), rdb)
}

func olderRecordsKept(t *testing.T, q *Queue, rdb redis.UniversalClient) {
	ctx := context.Background()
	tenDays := 10 * 24 * time.Hour
	var ahead []string
	for range 3 {
		m := msg("", "")
		m.SendAt = time.Now().Add(tenDays)
		a, err := q.Enqueue(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		ahead = append(ahead, a.ID)
	}
	due, _ := q.Enqueue(ctx, func() NewMessage { m := msg("", ""); m.SendAt = time.Now().Add(time.Hour); return m }())
	for _, id := range append(ahead, due.ID) { // as an older replica wrote them: the retention from accept
		p, _ := partitionOf(id)
		rdb.PExpire(ctx, recordKey(p, id), 300*time.Millisecond)
	}
	makeDue(t, rdb, due.ID)
	movePass(t, q, 10)
	for _, id := range ahead {
		if ttl := ttlOf(t, rdb, id); ttl < tenDays {
			t.Errorf("older replica's record due in 10 days, TTL after the mover's pass %v", ttl)
		}
	}
	if ttl := ttlOf(t, rdb, due.ID); ttl < 900*time.Millisecond {
		t.Errorf("older replica's record moved when due, TTL %v, want the retention from now", ttl)
	}
}

// The retry window starts when a message first falls due: a scheduled
// message's record says when the mover first moved it (its rate windows
// may hold it past its send_at); an older record, its send_at; a message
// sent at once, its accept.
func TestFirstDue(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := retentionQueue(t, rdb, 1)
		ctx := context.Background()
		m := msg("", "")
		m.SendAt = time.Now().Add(time.Hour)
		a, _ := q.Enqueue(ctx, m)
		rec, _ := q.Get(ctx, a.ID)
		if !rec.FirstDue().Equal(rec.SendAt) {
			t.Errorf("scheduled, not yet moved: first due %v, want send_at %v", rec.FirstDue(), rec.SendAt)
		}
		makeDue(t, rdb, a.ID)
		before := time.Now().Add(-time.Second)
		movePass(t, q, 10)
		e := readOne(t, q, "w")
		got, _, _ := beginOne(ctx, q, e)
		if fd := got.FirstDue(); fd.Before(before) || fd.After(time.Now()) || fd.Equal(got.SendAt) {
			t.Errorf("moved: first due %v, want when it was moved", fd)
		}
		q.Finish(ctx, e, "acme", Outcome{Status: StatusDeferred, RetryIn: time.Millisecond})
		time.Sleep(5 * time.Millisecond)
		movePass(t, q, 10)
		again, _, _ := beginOne(ctx, q, readOne(t, q, "w"))
		if !again.FirstDue().Equal(got.FirstDue()) {
			t.Errorf("a retry moved the first due time: %v -> %v", got.FirstDue(), again.FirstDue())
		}

		b, _ := q.Enqueue(ctx, msg("", ""))
		rec, _ = q.Get(ctx, b.ID)
		if !rec.FirstDue().Equal(rec.CreatedAt) {
			t.Errorf("sent at once: first due %v, want created_at %v", rec.FirstDue(), rec.CreatedAt)
		}
	})
}
