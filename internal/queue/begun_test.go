package queue

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// Begin counts the begins of a message since its last outcome: a reclaim
// after a dead worker counts, an outcome or a release starts over.
func TestBeginCountsBeginsSinceTheLastOutcome(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 1)
		ctx := context.Background()
		q.Enqueue(ctx, msg("", ""))
		begin := func(e Entry) int {
			t.Helper()
			started, err := q.Begin(ctx, []Entry{e})
			if err != nil || len(started) != 1 {
				t.Fatalf("begin: %+v %v", started, err)
			}
			return started[0].Begun
		}
		e := readOne(t, q, "dies")
		if n := begin(e); n != 1 {
			t.Fatalf("first begin counted %d", n)
		}
		time.Sleep(30 * time.Millisecond)
		es, err := q.Reclaim(ctx, 0, "dies-too", 20*time.Millisecond, 1)
		if err != nil || len(es) != 1 {
			t.Fatalf("reclaim: %+v %v", es, err)
		}
		if n := begin(es[0]); n != 2 {
			t.Fatalf("begin after a reclaim counted %d, want 2", n)
		}
		if err := q.Finish(ctx, es[0], "acme", Outcome{Status: StatusDeferred, RetryIn: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		if _, err := q.MoveDue(ctx, 0, 10); err != nil {
			t.Fatal(err)
		}
		retried := readOne(t, q, "w")
		if n := begin(retried); n != 1 {
			t.Fatalf("begin after an outcome counted %d, want 1", n)
		}
		if err := q.Release(ctx, retried); err != nil {
			t.Fatal(err)
		}
		if n := begin(readOne(t, q, "w")); n != 1 {
			t.Fatalf("begin after a release counted %d, want 1", n)
		}
	})
}

// Finishing an entry a second time (a retry after a lost answer) writes
// nothing: the first outcome stands and its event is not repeated.
func TestFinishingTwiceWritesOnce(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 1)
		ctx := context.Background()
		a, _ := q.Enqueue(ctx, msg("", ""))
		e := readOne(t, q, "w")
		beginOne(ctx, q, e)
		if err := q.Finish(ctx, e, "acme", Outcome{Status: StatusSent, Route: "tenant"}); err != nil {
			t.Fatal(err)
		}
		if err := q.Finish(ctx, e, "acme", Outcome{Status: StatusFailed, Route: "tenant", Error: "late"}); err != nil {
			t.Fatalf("second finish: %v", err)
		}
		rec, err := q.Get(ctx, a.ID)
		if err != nil || rec.Status != StatusSent || rec.Error != "" {
			t.Fatalf("record %+v %v, want the first outcome", rec, err)
		}
		evs, err := q.ReadEvents(ctx, 0, "d", 10, -1)
		if err != nil || len(evs) != 1 || evs[0].Type != "message.sent" {
			t.Fatalf("events %+v %v, want one message.sent", evs, err)
		}
	})
}
