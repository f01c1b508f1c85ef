package queue

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// addEvents appends n events to partition p's stream, as finishScript
// writes them, in server-side loops of up to 10,000 (short enough that
// Redis answers others between them on a loaded machine).
func addEvents(t *testing.T, rdb redis.UniversalClient, p, n int) {
	t.Helper()
	for done := 0; done < n; done += 10_000 {
		err := rdb.Eval(context.Background(), `
for i = 1, tonumber(ARGV[1]) do
  redis.call('XADD', KEYS[1], '*', 'type', 'message.sent', 'message_id', 'm' .. i, 'tenant_id', 'acme', 'at', '0')
end
return 1`, []string{eventsKey(p)}, min(10_000, n-done)).Err()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// finishWithEvent delivers one new message and finishes it sent, which
// writes its event.
func finishWithEvent(t *testing.T, q *Queue) {
	t.Helper()
	ctx := context.Background()
	if _, err := q.Enqueue(ctx, msg("", "")); err != nil {
		t.Fatal(err)
	}
	e := readOne(t, q, "w")
	if _, ok, err := beginOne(ctx, q, e); !ok || err != nil {
		t.Fatalf("begin: %v", err)
	}
	out := Outcome{Status: StatusSent, Route: "tenant", Attempts: []Attempt{{At: time.Now(), Route: "tenant", SMTPCode: 250}}}
	if err := q.Finish(ctx, e, "acme", out); err != nil {
		t.Fatal(err)
	}
}

// With no dispatcher reading, events pile up past the million the stream
// used to be capped at (MAXLEN ~ 1000000 on every write, which dropped
// the oldest unread events without a word): writing one more drops none.
func TestFinishKeepsUnreadEventsPastTheOldCap(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a million events")
	}
	rdb := redistest.Start(t).Client(t)
	q := newQueue(t, rdb, 1)
	const backlog = 1_000_200
	addEvents(t, rdb, 0, backlog)
	finishWithEvent(t, q)
	if n := rdb.XLen(context.Background(), eventsKey(0)).Val(); n != backlog+1 {
		t.Fatalf("the stream holds %d events, want %d: unread events were dropped", n, backlog+1)
	}
}

// TrimEvents keeps every event the webhooks group has not acknowledged,
// read or not, trims the rest, and past the cap drops the oldest and
// counts them.
func TestTrimEvents(t *testing.T) {
	check := func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 1)
		ctx := context.Background()
		trim := func(cap int64, wantTrimmed, wantDropped int64, wantLen int64) {
			t.Helper()
			trimmed, dropped, err := q.TrimEvents(ctx, 0, cap)
			if err != nil {
				t.Fatal(err)
			}
			if n := rdb.XLen(ctx, eventsKey(0)).Val(); trimmed != wantTrimmed || dropped != wantDropped || n != wantLen {
				t.Fatalf("trim(cap %d): trimmed %d, dropped %d, %d left; want %d, %d, %d",
					cap, trimmed, dropped, n, wantTrimmed, wantDropped, wantLen)
			}
		}
		trim(10, 0, 0, 0) // no stream yet

		// The group made before any event (as the dispatcher's first read
		// makes it): nothing read yet, nothing to trim. miniredis says
		// its last-delivered-id is "0" where Redis says "0-0".
		if err := rdb.XGroupCreateMkStream(ctx, eventsKey(0), eventGroup, "0").Err(); err != nil {
			t.Fatal(err)
		}
		trim(10, 0, 0, 0)

		// No dispatcher has read: nothing is trimmed below the cap.
		addEvents(t, rdb, 0, 40)
		trim(100, 0, 0, 40)

		// Read 30: 10 acknowledged (AckEvents deletes them), 20 still
		// pending; they and the 10 unread stay.
		evs, err := q.ReadEvents(ctx, 0, "d", 30, 0)
		if err != nil || len(evs) != 30 {
			t.Fatalf("read %d, %v", len(evs), err)
		}
		ack := func(evs []Event) {
			t.Helper()
			ids := make([]string, len(evs))
			for i, e := range evs {
				ids[i] = e.StreamID
			}
			if err := q.AckEvents(ctx, 0, ids...); err != nil {
				t.Fatal(err)
			}
		}
		ack(evs[:10])
		trim(100, 0, 0, 30)
		// An entry below the oldest pending one that was acknowledged but
		// not deleted (as by an older replica) is trimmed.
		if err := rdb.XAck(ctx, eventsKey(0), eventGroup, evs[10].StreamID).Err(); err != nil {
			t.Fatal(err)
		}
		trim(100, 1, 0, 29)
		// All read acknowledged, without deleting: trimmed up to the
		// first unread.
		for _, e := range evs[11:] {
			rdb.XAck(ctx, eventsKey(0), eventGroup, e.StreamID)
		}
		trim(100, 19, 0, 10)

		// A stalled dispatcher: 50 more unread, the cap at 25 drops the
		// 35 oldest and says so.
		addEvents(t, rdb, 0, 50)
		trim(25, 0, 35, 25)
		// The dispatcher reads on from what is left.
		if evs, err := q.ReadEvents(ctx, 0, "d", 100, 0); err != nil || len(evs) != 25 {
			t.Fatalf("after the drop read %d, %v", len(evs), err)
		}
	}
	redistest.EachBackend(t, check)
	t.Run("cluster", func(t *testing.T) { check(t, redistest.StartCluster(t, 3).Client(t)) })
}
