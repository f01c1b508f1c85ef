package webhook

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
)

// eachRedis runs fn on a redis-server, a Redis Cluster and miniredis.
func eachRedis(t *testing.T, fn func(t *testing.T, rdb redis.UniversalClient)) {
	t.Run("redis-server", func(t *testing.T) { fn(t, redistest.Start(t).Client(t)) })
	t.Run("cluster", func(t *testing.T) { fn(t, redistest.StartCluster(t, 3).Client(t)) })
	t.Run("miniredis", func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
		t.Cleanup(func() { rdb.Close() })
		fn(t, rdb)
	})
}

func newLogStore(t *testing.T, rdb redis.UniversalClient) *Store {
	t.Helper()
	key, _ := seal.ParseKey(seal.NewKey())
	sealer, _ := seal.New(key)
	store := NewStore(rdb, sealer)
	hook := Hook{Name: "ops", URL: "https://hooks.example/x", Events: []string{"message.sent"}, Secret: secret.New("whsec_test")}
	if _, err := store.Put(context.Background(), hook); err != nil {
		t.Fatal(err)
	}
	return store
}

// Pages of the delivery log go newest first, each attempt once, with
// attempts recorded between pages (newer than every cursor) not shifting
// the walk.
func TestDeliveriesPaged(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		store := newLogStore(t, rdb)
		const n = 250
		for i := range n {
			if err := store.record(ctx, "ops", Delivery{EventID: "evt_" + strconv.Itoa(i), Attempt: 1}); err != nil {
				t.Fatal(err)
			}
		}
		want, after, pages := n-1, "", 0
		for {
			page, next, err := store.Deliveries(ctx, "ops", after, 100)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, d := range page {
				if d.EventID != "evt_"+strconv.Itoa(want) {
					t.Fatalf("page %d: %s, want evt_%d", pages, d.EventID, want)
				}
				want--
			}
			// A new attempt while paging.
			if err := store.record(ctx, "ops", Delivery{EventID: "evt_new", Attempt: 1}); err != nil {
				t.Fatal(err)
			}
			if next == "" {
				break
			}
			after = next
		}
		if want != -1 || pages != 3 {
			t.Fatalf("walk ended at evt_%d after %d pages", want, pages)
		}
		for _, bad := range []string{"evt_3", "0-0", "1-", "-1", "1-2-3", "+1-0", "18446744073709551616-0", "1-18446744073709551616"} {
			if _, _, err := store.Deliveries(ctx, "ops", bad, 10); !errors.Is(err, ErrBadCursor) {
				t.Errorf("cursor %q: %v", bad, err)
			}
		}
		if ds, next, err := store.Deliveries(ctx, "ops", "18446744073709551615-18446744073709551615", 1); err != nil || len(ds) != 1 || next == "" {
			t.Errorf("the largest cursor: %+v %q %v", ds, next, err)
		}
	})
}

// The log keeps the newest logSize attempts, and none older than logAge,
// trimmed as attempts are written.
func TestDeliveriesBounded(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		store := newLogStore(t, rdb)
		old := strconv.FormatInt(time.Now().Add(-logAge-time.Hour).UnixMilli(), 10) + "-0"
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: logKey("ops"), ID: old, Values: []string{"d", `{"event_id":"evt_old"}`}}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := store.record(ctx, "ops", Delivery{EventID: "evt_0", Attempt: 1}); err != nil {
			t.Fatal(err)
		}
		if ds, _, _ := store.Deliveries(ctx, "ops", "", 10); len(ds) != 1 || ds[0].EventID != "evt_0" {
			t.Fatalf("an attempt older than %s was kept: %+v", logAge, ds)
		}
		pipe := rdb.Pipeline()
		for i := range logSize + 50 {
			pipe.EvalSha(ctx, recordScript.Hash(), []string{hooksKey, logKey("ops"), listLogKey("ops")}, "ops",
				`{"event_id":"evt_`+strconv.Itoa(i+1)+`"}`, logSize, logAge.Milliseconds())
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if n := rdb.XLen(ctx, logKey("ops")).Val(); n != logSize {
			t.Fatalf("log holds %d attempts, want %d", n, logSize)
		}
		if ds, _, _ := store.Deliveries(ctx, "ops", "", 1); ds[0].EventID != "evt_"+strconv.Itoa(logSize+50) {
			t.Fatalf("newest: %+v", ds)
		}
	})
}

// A log an earlier version kept as a list (newest first) is moved into
// the stream on first use, in order.
func TestDeliveriesOfAListLog(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		store := newLogStore(t, rdb)
		for i := range 3 {
			rdb.LPush(ctx, listLogKey("ops"), `{"event_id":"evt_`+strconv.Itoa(i)+`"}`)
		}
		ds, next, err := store.Deliveries(ctx, "ops", "", 2)
		if err != nil || len(ds) != 2 || ds[0].EventID != "evt_2" || ds[1].EventID != "evt_1" || next == "" {
			t.Fatalf("first page: %+v %q %v", ds, next, err)
		}
		if err := store.record(ctx, "ops", Delivery{EventID: "evt_3"}); err != nil {
			t.Fatal(err)
		}
		ds, _, _ = store.Deliveries(ctx, "ops", next, 2)
		if len(ds) != 1 || ds[0].EventID != "evt_0" {
			t.Fatalf("second page: %+v", ds)
		}
		if rdb.Exists(ctx, listLogKey("ops")).Val() != 0 {
			t.Fatal("the list log is still there")
		}
	})
}

// A logged event is queued again for its webhook, once while a delivery
// of it is still queued; an event not in the log, or logged without its
// body, is ErrNoDelivery.
func TestRetryDelivery(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		store := newLogStore(t, rdb)
		sent := Delivery{EventID: "evt_0_1-0", Type: "message.sent", MessageID: "m1", Attempt: 2, Error: "receiver answered 500", GaveUp: true}
		if err := store.recordSent(ctx, "ops", sent, []byte(`{"id":"evt_0_1-0"}`)); err != nil {
			t.Fatal(err)
		}
		if err := store.record(ctx, "ops", Delivery{EventID: "evt_old", Attempt: 1}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			d, err := store.RetryDelivery(ctx, "ops", "evt_0_1-0")
			if err != nil || d.EventID != sent.EventID || d.Attempt != 2 {
				t.Fatalf("retry: %+v %v", d, err)
			}
		}
		job := rdb.HGetAll(ctx, jobKey("ops:evt_0_1-0")).Val()
		if job["body"] != `{"id":"evt_0_1-0"}` || job["hook"] != "ops" || job["attempts"] != "2" {
			t.Errorf("job: %v", job)
		}
		if n := rdb.ZCard(ctx, dueKey).Val(); n != 1 {
			t.Errorf("%d jobs due, want 1", n)
		}
		for _, id := range []string{"evt_old", "evt_never"} {
			if _, err := store.RetryDelivery(ctx, "ops", id); !errors.Is(err, ErrNoDelivery) {
				t.Errorf("%s: %v, want ErrNoDelivery", id, err)
			}
		}
		if _, err := store.RetryDelivery(ctx, "nohook", "evt_0_1-0"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown webhook: %v", err)
		}
	})
}
