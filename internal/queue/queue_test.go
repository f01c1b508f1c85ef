package queue

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/redistest"
)

func newQueue(t *testing.T, rdb redis.UniversalClient, partitions int) *Queue {
	t.Helper()
	q := New(rdb, Options{Partitions: partitions, Retention: time.Hour, IdempotencyTTL: 24 * time.Hour})
	if err := q.EnsureGroups(context.Background()); err != nil {
		t.Fatal(err)
	}
	return q
}

func msg(key, hash string) NewMessage {
	return NewMessage{TenantID: "acme", Route: "tenant", MessageID: "<x@acme.example>",
		Payload: []byte(`{"subject":"hi"}`), IdempotencyKey: key, RequestHash: hash}
}

// readOne reads entries of every partition until one arrives.
func readOne(t *testing.T, q *Queue, consumer string) Entry {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for p := range q.Partitions() {
			es, err := q.Read(context.Background(), p, consumer, 1, 50*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) > 0 {
				return es[0]
			}
		}
	}
	t.Fatal("no entry arrived")
	return Entry{}
}

func TestEnqueueGetAndIdempotency(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 4)
		ctx := context.Background()

		a, err := q.Enqueue(ctx, msg("", ""))
		if err != nil || a.Replayed {
			t.Fatalf("enqueue: %+v %v", a, err)
		}
		rec, err := q.Get(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status != StatusQueued || rec.TenantID != "acme" || rec.Route != "tenant" || rec.CreatedAt.IsZero() || rec.Payload != nil {
			t.Errorf("record = %+v", rec)
		}
		p, _ := partitionOf(a.ID)
		if ttl := rdb.PTTL(ctx, recordKey(p, a.ID)).Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("record TTL = %v, want retention", ttl)
		}

		first, err := q.Enqueue(ctx, msg("key-1", "hash-a"))
		if err != nil {
			t.Fatal(err)
		}
		again, err := q.Enqueue(ctx, msg("key-1", "hash-a"))
		if err != nil || !again.Replayed || again.ID != first.ID {
			t.Fatalf("replay = %+v %v, want %s", again, err, first.ID)
		}
		if _, err := q.Enqueue(ctx, msg("key-1", "hash-b")); !errors.Is(err, ErrIdempotencyKeyReused) {
			t.Fatalf("different request under the same key: %v", err)
		}
		other := msg("key-1", "hash-a")
		other.TenantID = "other"
		if o, err := q.Enqueue(ctx, other); err != nil || o.Replayed {
			t.Fatalf("same key, other tenant: %+v %v", o, err)
		}

		var queued int64
		for p := range q.Partitions() {
			n, _ := q.Depth(ctx, p)
			queued += n
		}
		if queued != 3 {
			t.Errorf("depth = %d, want 3 (the replay and the refusal queue nothing)", queued)
		}
		for _, bad := range []string{"", "nope", a.ID + "x", strings.Replace(a.ID, "-", "-9", 1)} {
			if _, err := q.Get(ctx, bad); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q) = %v", bad, err)
			}
		}
	})
}

func TestDeliverDeferRetrySend(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 1)
		ctx := context.Background()
		a, _ := q.Enqueue(ctx, msg("", ""))

		e := readOne(t, q, "w1")
		rec, ok, err := beginOne(ctx, q, e)
		if err != nil || !ok || string(rec.Payload) != `{"subject":"hi"}` {
			t.Fatalf("begin: %+v %v %v", rec, ok, err)
		}
		if got, _ := q.Get(ctx, a.ID); got.Status != StatusSending {
			t.Errorf("status while sending = %s", got.Status)
		}
		att := []Attempt{{At: time.Now(), Route: "tenant", SMTPCode: 451, Message: "try later", Error: "rejected"}}
		if err := q.Finish(ctx, e, "acme", Outcome{Status: StatusDeferred, Route: "tenant", Attempts: att, RetryIn: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		got, _ := q.Get(ctx, a.ID)
		if got.Status != StatusDeferred || len(got.Attempts) != 1 || got.Attempts[0].SMTPCode != 451 || got.NextAttemptAt.IsZero() {
			t.Fatalf("after defer: %+v", got)
		}
		if n, _ := q.MoveDue(ctx, 0, 10); n != 0 {
			t.Fatalf("moved %d retries before they were due", n)
		}
		time.Sleep(150 * time.Millisecond)
		if n, _ := q.MoveDue(ctx, 0, 10); n != 1 {
			t.Fatalf("moved %d due retries, want 1", n)
		}
		e2 := readOne(t, q, "w1")
		rec2, ok, _ := beginOne(ctx, q, e2)
		if !ok || len(rec2.Attempts) != 1 {
			t.Fatalf("retry begin: %+v", rec2)
		}
		att = append(rec2.Attempts, Attempt{At: time.Now(), Route: "tenant", SMTPCode: 250})
		rej := []Rejection{{Email: "gone@example.com", SMTPCode: 550, EnhancedCode: "5.1.1", Message: "no such user"}}
		if err := q.Finish(ctx, e2, "acme", Outcome{Status: StatusSent, Route: "tenant", Attempts: att, Rejected: rej}); err != nil {
			t.Fatal(err)
		}
		got, _ = q.Get(ctx, a.ID)
		if got.Status != StatusSent || got.SentAt.IsZero() || len(got.Attempts) != 2 || len(got.Rejected) != 1 || !got.NextAttemptAt.IsZero() {
			t.Fatalf("after send: %+v", got)
		}
		// A duplicate entry of a finished message is acknowledged, not sent.
		if err := q.Release(ctx, Entry{Partition: 0, StreamID: e2.StreamID, ID: a.ID}); err != nil {
			t.Fatal(err)
		}
		dup := readOne(t, q, "w1")
		if _, ok, err := beginOne(ctx, q, dup); ok || err != nil {
			t.Fatalf("finished message begun again: ok=%v err=%v", ok, err)
		}
		if n, _ := q.Depth(ctx, 0); n != 0 {
			t.Errorf("depth after all done = %d", n)
		}
	})
}

func TestReclaimAfterConsumerDies(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 1)
		ctx := context.Background()
		a, _ := q.Enqueue(ctx, msg("", ""))
		dead := readOne(t, q, "dead-worker")
		if _, ok, _ := beginOne(ctx, q, dead); !ok {
			t.Fatal("begin")
		}
		// "dead-worker" never finishes. Too early to reclaim:
		if es, _ := q.Reclaim(ctx, 0, "w2", time.Second, 10); len(es) != 0 {
			t.Fatalf("reclaimed a fresh entry: %+v", es)
		}
		time.Sleep(120 * time.Millisecond)
		es, err := q.Reclaim(ctx, 0, "w2", 100*time.Millisecond, 10)
		if err != nil || len(es) != 1 || es[0].ID != a.ID {
			t.Fatalf("reclaim = %+v %v", es, err)
		}
		// A worker that keeps touching its entry keeps it.
		time.Sleep(120 * time.Millisecond)
		if err := q.Touch(ctx, 0, "w2", []string{es[0].StreamID}); err != nil {
			t.Fatal(err)
		}
		if again, _ := q.Reclaim(ctx, 0, "w3", 100*time.Millisecond, 10); len(again) != 0 {
			t.Fatalf("touched entry reclaimed: %+v", again)
		}
	})
}

func TestWakeHeld(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 2)
		ctx := context.Background()
		ids := enqueueN(t, q, 4)
		for range ids {
			e := readOne(t, q, "w")
			beginOne(ctx, q, e)
			if err := q.Finish(ctx, e, "acme", Outcome{Status: StatusDeferred, RetryIn: time.Hour, HoldForTenant: true}); err != nil {
				t.Fatal(err)
			}
		}
		for p := range 2 {
			if n, _ := q.MoveDue(ctx, p, 10); n != 0 {
				t.Fatal("held messages due before their hour")
			}
		}
		n, err := q.WakeHeld(ctx, "acme")
		if err != nil || n != 4 {
			t.Fatalf("woke %d, %v", n, err)
		}
		moved := 0
		for p := range 2 {
			m, _ := q.MoveDue(ctx, p, 10)
			moved += m
			if rdb.Exists(ctx, heldKey(p, "acme")).Val() != 0 {
				t.Error("held set not cleared")
			}
		}
		if moved != 4 {
			t.Fatalf("moved %d after wake, want 4", moved)
		}
	})
}

func TestReadRecreatesLostGroup(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 1)
		ctx := context.Background()
		rdb.FlushAll(ctx) // as after a restart without persistence
		if _, err := q.Read(ctx, 0, "w", 1, 10*time.Millisecond); err != nil {
			t.Fatalf("read after group loss: %v", err)
		}
		q.Enqueue(ctx, msg("", ""))
		if e := readOne(t, q, "w"); e.ID == "" {
			t.Fatal("no id")
		}
	})
}

func TestWaitReplicas(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.Start(t, redistest.WithReplicaOf(primary))
	ctx := context.Background()
	rep := replica.Client(t)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(rep.Info(ctx, "replication").Val(), "master_link_status:up") {
		if time.Now().After(deadline) {
			t.Fatal("replica never linked")
		}
		time.Sleep(50 * time.Millisecond)
	}

	q := New(primary.Client(t), Options{Partitions: 1, Retention: time.Hour, IdempotencyTTL: 24 * time.Hour,
		WaitReplicas: 1, WaitTimeout: 2 * time.Second})
	a, err := q.Enqueue(ctx, msg("", ""))
	if err != nil || a.Unreplicated {
		t.Fatalf("enqueue with a replica: %+v %v", a, err)
	}
	// WAIT returned only once the replica held the write.
	if rep.Exists(ctx, recordKey(0, a.ID)).Val() != 1 {
		t.Fatal("record not on the replica when Enqueue returned")
	}

	q2 := New(primary.Client(t), Options{Partitions: 1, Retention: time.Hour, IdempotencyTTL: 24 * time.Hour,
		WaitReplicas: 2, WaitTimeout: 100 * time.Millisecond})
	start := time.Now()
	a, err = q2.Enqueue(ctx, msg("", ""))
	if err != nil || !a.Unreplicated {
		t.Fatalf("two replicas asked, one present: %+v %v", a, err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("WAIT not bounded: %v", time.Since(start))
	}
	if _, err := q2.Get(ctx, a.ID); err != nil {
		t.Errorf("an unreplicated message is still queued: %v", err)
	}
}

func TestScheduleCancelAndEvents(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 1)
		ctx := context.Background()
		later := msg("", "")
		later.SendAt = time.Now().Add(300 * time.Millisecond)
		a, err := q.Enqueue(ctx, later)
		if err != nil || a.Status != StatusScheduled {
			t.Fatalf("scheduled enqueue: %+v %v", a, err)
		}
		if rec, _ := q.Get(ctx, a.ID); rec.Status != StatusScheduled || rec.SendAt.IsZero() {
			t.Fatalf("record: %+v", rec)
		}
		if n, _ := q.MoveDue(ctx, 0, 10); n != 0 {
			t.Fatal("scheduled message due early")
		}
		time.Sleep(350 * time.Millisecond)
		if n, _ := q.MoveDue(ctx, 0, 10); n != 1 {
			t.Fatal("scheduled message not due at its time")
		}

		// Cancel: a queued one can be, a sending one cannot.
		b, _ := q.Enqueue(ctx, msg("", ""))
		if err := q.Cancel(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		if rec, _ := q.Get(ctx, b.ID); rec.Status != StatusCancelled {
			t.Fatalf("after cancel: %s", rec.Status)
		}
		var sending Entry
		for range 2 { // a's entry and b's: b is skipped as cancelled
			e := readOne(t, q, "w")
			if _, ok, _ := beginOne(ctx, q, e); ok {
				sending = e
			}
		}
		if sending.ID != a.ID {
			t.Fatalf("began %q, want only %q", sending.ID, a.ID)
		}
		if err := q.Cancel(ctx, a.ID); !errors.Is(err, ErrNotCancellable) {
			t.Fatalf("cancel while sending: %v", err)
		}

		att := []Attempt{{At: time.Now(), Route: "tenant", SMTPCode: 451, Error: "rejected"}}
		q.Finish(ctx, sending, "acme", Outcome{Status: StatusDeferred, Route: "tenant", Attempts: att, RetryIn: time.Millisecond})
		time.Sleep(5 * time.Millisecond)
		q.MoveDue(ctx, 0, 10)
		again := readOne(t, q, "w")
		beginOne(ctx, q, again)
		q.Finish(ctx, again, "acme", Outcome{Status: StatusDeferred, Route: "tenant", Attempts: att, RetryIn: time.Hour})
		events, err := q.ReadEvents(ctx, 0, "d", 10, 10*time.Millisecond)
		if err != nil || len(events) != 2 {
			t.Fatalf("events: %+v %v", events, err)
		}
		if events[0].Type != "message.deferred" || !events[0].First || events[1].First || events[0].MessageID != a.ID ||
			events[0].TenantID != "acme" || !strings.Contains(string(events[0].Attempt), "451") {
			t.Fatalf("events: %+v", events)
		}
		if err := q.AckEvents(ctx, 0, events[0].StreamID, events[1].StreamID); err != nil {
			t.Fatal(err)
		}
		if more, _ := q.ReadEvents(ctx, 0, "d", 10, 10*time.Millisecond); len(more) != 0 {
			t.Fatalf("acked events read again: %+v", more)
		}
	})
}

// beginOne begins a single entry.
func beginOne(ctx context.Context, q *Queue, e Entry) (Record, bool, error) {
	started, err := q.Begin(ctx, []Entry{e})
	if len(started) == 0 {
		return Record{}, false, err
	}
	return started[0].Record, true, err
}

// An outcome no webhook listens for is recorded without an event.
func TestUnheardOutcomeWritesNoEvent(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 1)
		ctx := context.Background()
		heard, _ := q.Enqueue(ctx, msg("", ""))
		unheard, _ := q.Enqueue(ctx, msg("", ""))
		att := []Attempt{{At: time.Now(), Route: "tenant", SMTPCode: 250}}
		for range 2 {
			e := readOne(t, q, "w")
			if _, ok, err := beginOne(ctx, q, e); !ok || err != nil {
				t.Fatalf("begin: %v", err)
			}
			out := Outcome{Status: StatusSent, Route: "tenant", Attempts: att, Unheard: e.ID == unheard.ID}
			if err := q.Finish(ctx, e, "acme", out); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{heard.ID, unheard.ID} {
			if rec, _ := q.Get(ctx, id); rec.Status != StatusSent || len(rec.Attempts) != 1 {
				t.Errorf("%s: %+v", id, rec)
			}
		}
		events, err := q.ReadEvents(ctx, 0, "d", 10, 10*time.Millisecond)
		if err != nil || len(events) != 1 || events[0].MessageID != heard.ID {
			t.Fatalf("events: %+v %v, want one for %s", events, err, heard.ID)
		}
	})
}

// Entries read together are begun in one call: those still to deliver
// come back marked sending, a cancelled one is acknowledged and skipped.
// Then a failed outcome drops the payload, and a paced one (queued) waits
// in the retry set without an event.
func TestBeginTogetherThenFailAndPace(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 1)
		ctx := context.Background()
		ids := enqueueN(t, q, 3)
		if err := q.Cancel(ctx, ids[1]); err != nil {
			t.Fatal(err)
		}
		es, err := q.Read(ctx, 0, "w", 10, 50*time.Millisecond)
		if err != nil || len(es) != 3 {
			t.Fatalf("read %d entries, %v", len(es), err)
		}
		started, err := q.Begin(ctx, es)
		if err != nil || len(started) != 2 || started[0].ID != ids[0] || started[1].ID != ids[2] {
			t.Fatalf("began %+v, %v; want %s and %s", started, err, ids[0], ids[2])
		}
		for _, st := range started {
			if st.Record.Status != StatusSending || string(st.Record.Payload) != `{"subject":"hi"}` {
				t.Errorf("begun record %+v", st.Record)
			}
			if rec, _ := q.Get(ctx, st.ID); rec.Status != StatusSending {
				t.Errorf("%s stored as %s, want sending", st.ID, rec.Status)
			}
		}
		if n := rdb.XPending(ctx, streamKey(0), group).Val().Count; n != 2 {
			t.Errorf("%d entries pending, want 2 (the cancelled one acknowledged)", n)
		}

		att := []Attempt{{At: time.Now(), Route: "tenant", SMTPCode: 554, Error: "rejected"}}
		failed, paced := started[0], started[1]
		if err := q.Finish(ctx, failed.Entry, "acme", Outcome{Status: StatusFailed, Route: "tenant", Attempts: att, Error: "554 refused"}); err != nil {
			t.Fatal(err)
		}
		if err := q.Finish(ctx, paced.Entry, "acme", Outcome{Status: StatusQueued, Route: "tenant", RetryIn: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if rec, _ := q.Get(ctx, failed.ID); rec.Status != StatusFailed || rec.Error != "554 refused" || !rec.SentAt.IsZero() {
			t.Errorf("failed record %+v", rec)
		}
		if payload := rdb.HGet(ctx, recordKey(0, failed.ID), "payload").Val(); payload != "" {
			t.Errorf("a failed message kept its payload %q", payload)
		}
		if rec, _ := q.Get(ctx, paced.ID); rec.Status != StatusQueued || rec.NextAttemptAt.IsZero() {
			t.Errorf("paced record %+v", rec)
		}
		if score, err := rdb.ZScore(ctx, retryKey(0), paced.ID).Result(); err != nil || score == 0 {
			t.Errorf("paced message not in the retry set: %v %v", score, err)
		}
		events, _ := q.ReadEvents(ctx, 0, "d", 10, 10*time.Millisecond)
		if len(events) != 1 || events[0].MessageID != failed.ID || events[0].Type != "message.failed" {
			t.Errorf("events %+v, want only the failure", events)
		}
	})
}

// enqueueN queues n messages and returns their ids.
func enqueueN(t *testing.T, q *Queue, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		a, err := q.Enqueue(context.Background(), msg("", ""))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = a.ID
	}
	return ids
}

// Consumers of stopped replicas are removed once idle, but never one that
// still holds an entry: removing it would orphan the entry. Real Redis
// only: miniredis reports no idle time, so there it prunes nothing.
func TestPruneConsumers(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	q := newQueue(t, rdb, 1)
	ctx := context.Background()
	enqueueN(t, q, 2)
	done := readOne(t, q, "stopped")
	beginOne(ctx, q, done)
	if err := q.Finish(ctx, done, "acme", Outcome{Status: StatusSent}); err != nil {
		t.Fatal(err)
	}
	holding := readOne(t, q, "holding")
	evs, err := q.ReadEvents(ctx, 0, "stopped-dispatcher", 10, 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events %+v %v", evs, err)
	}
	if err := q.AckEvents(ctx, 0, evs[0].StreamID); err != nil {
		t.Fatal(err)
	}

	if n, err := q.PruneConsumers(ctx, 0, time.Hour); err != nil || n != 0 {
		t.Fatalf("pruned %d (%v) consumers seen just now", n, err)
	}
	time.Sleep(60 * time.Millisecond)
	n, err := q.PruneConsumers(ctx, 0, 50*time.Millisecond)
	if err != nil || n != 2 {
		t.Fatalf("pruned %d consumers (%v), want 2: the idle ones holding nothing", n, err)
	}
	names := func(stream, grp string) []string {
		cs, err := rdb.XInfoConsumers(ctx, stream, grp).Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	if got := names(streamKey(0), group); len(got) != 1 || got[0] != "holding" {
		t.Fatalf("delivery group keeps %v, want [holding]", got)
	}
	if got := names(eventsKey(0), eventGroup); len(got) != 0 {
		t.Fatalf("event group keeps %v", got)
	}
	// The entry "holding" kept is still there for a reclaim.
	es, err := q.Reclaim(ctx, 0, "w2", 50*time.Millisecond, 10)
	if err != nil || len(es) != 1 || es[0].ID != holding.ID {
		t.Fatalf("reclaim after prune = %+v %v", es, err)
	}
	// A partition never read has no groups yet: nothing to do, no error.
	if n, err := newQueue(t, rdb, 4).PruneConsumers(ctx, 3, time.Millisecond); err != nil || n != 0 {
		t.Fatalf("empty partition: %d %v", n, err)
	}
}

// TestEnqueueSpendsTheRateInOrder accepts many messages of one tenant at
// once, so that they share script calls: each must see the budget the
// ones before it left, exactly the allowance may pass, and a tenant beside
// them spends from its own windows.
func TestEnqueueSpendsTheRateInOrder(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 1)
		limit := ratelimit.Limit{PerMinute: 20, PerDay: 1000}
		const n = 50
		results := make([]error, n+5)
		remaining := make([]int, n+5)
		var wg sync.WaitGroup
		for i := range results {
			m := msg("", "")
			m.Cost, m.Limit = 1, limit
			if i >= n {
				m.TenantID = "beta"
			}
			wg.Go(func() {
				a, err := q.Enqueue(context.Background(), m)
				results[i], remaining[i] = err, a.RateLimit.Remaining
			})
		}
		wg.Wait()
		seen := map[int]bool{}
		for i, err := range results[:n] {
			switch {
			case err == nil:
				seen[remaining[i]] = true
			case !errors.As(err, new(*ratelimit.DeniedError)):
				t.Fatalf("message %d: %v", i, err)
			}
		}
		if len(seen) != limit.PerMinute || !seen[0] || !seen[limit.PerMinute-1] {
			t.Errorf("accepted %d with remaining %v, want %d, one of each", len(seen), seen, limit.PerMinute)
		}
		for i, err := range results[n:] {
			if err != nil {
				t.Errorf("beta's message %d: %v", i, err)
			}
		}
		// The spend was written: the next message waits.
		m := msg("", "")
		m.Cost, m.Limit = 1, limit
		if _, err := q.Enqueue(context.Background(), m); !errors.As(err, new(*ratelimit.DeniedError)) {
			t.Errorf("message after the allowance: %v", err)
		}
	})
}

// A message's kind comes back with its payload when its delivery begins;
// one without a kind stores none.
func TestKindComesBackWithThePayload(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	q := newQueue(t, rdb, 1)
	ctx := context.Background()
	raw := msg("", "")
	raw.Kind, raw.Payload = "submission", []byte("{}\r\nFrom: a@acme.example\r\n\r\nbody\xff\r\n")
	if _, err := q.Enqueue(ctx, raw); err != nil {
		t.Fatal(err)
	}
	plain, err := q.Enqueue(ctx, msg("", ""))
	if err != nil {
		t.Fatal(err)
	}
	var got []Record
	for range 2 {
		started, err := q.Begin(ctx, []Entry{readOne(t, q, "c")})
		if err != nil || len(started) != 1 {
			t.Fatalf("begin: %+v %v", started, err)
		}
		got = append(got, started[0].Record)
	}
	if got[0].Kind != "submission" || string(got[0].Payload) != string(raw.Payload) || got[1].Kind != "" {
		t.Errorf("kinds %q %q, payload %q", got[0].Kind, got[1].Kind, got[0].Payload)
	}
	if n, _ := rdb.HExists(ctx, recordKey(0, plain.ID), "kind").Result(); n {
		t.Error("a request's record stores a kind")
	}
}
