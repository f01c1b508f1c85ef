package queue

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// listed pages through f with limit per page and returns the ids, in the
// order answered, failing on a page that repeats an id.
func listed(t *testing.T, q *Queue, f ListFilter, between func()) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		page, err := q.List(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			if seen[m.ID] {
				t.Fatalf("%s answered twice", m.ID)
			}
			seen[m.ID] = true
			ids = append(ids, m.ID)
		}
		if page.Next == "" || pages > 1000 {
			return ids
		}
		f.After = page.Next
		if between != nil {
			between()
		}
	}
}

func tagged(tenant string, tags, to []string) NewMessage {
	m := msg("", "")
	m.TenantID, m.Tags, m.Recipients = tenant, tags, to
	return m
}

func TestListFiltersAndPages(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		listFiltersAndPages(t, newQueue(t, rdb, 3))
	})
}

func TestListFiltersAndPagesOnCluster(t *testing.T) {
	rdb := redistest.StartCluster(t, 3).Client(t)
	listFiltersAndPages(t, newQueue(t, rdb, 6))
}

func listFiltersAndPages(t *testing.T, q *Queue) {
	ctx := context.Background()
	enq := func(m NewMessage) string {
		t.Helper()
		a, err := q.Enqueue(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	var acme, globex, invoices, toBob, both []string
	start := time.Now()
	for i := range 7 {
		tags, to := []string{"other"}, []string{"carol@example.com"}
		if i%2 == 0 {
			tags = []string{"invoice"}
		}
		if i%3 == 0 {
			to = []string{"Bob@Example.com", "carol@example.com"}
		}
		id := enq(tagged("acme", tags, to))
		acme = append(acme, id)
		if i%2 == 0 {
			invoices = append(invoices, id)
		}
		if i%3 == 0 {
			toBob = append(toBob, id)
		}
		if i%2 == 0 && i%3 == 0 {
			both = append(both, id)
		}
		globex = append(globex, enq(tagged("globex", []string{"invoice"}, []string{"bob@example.com"})))
		time.Sleep(2 * time.Millisecond)
	}
	newestFirst := func(ids []string) []string {
		out := slices.Clone(ids)
		slices.Reverse(out)
		return out
	}
	all := append(slices.Clone(acme), globex...)
	slices.SortFunc(all, func(a, b string) int { return -cmpULID(a, b) })

	cases := map[string]struct {
		f    ListFilter
		want []string
	}{
		"every tenant":       {ListFilter{}, all},
		"tenant":             {ListFilter{TenantID: "acme"}, newestFirst(acme)},
		"other tenant":       {ListFilter{TenantID: "globex"}, newestFirst(globex)},
		"tag":                {ListFilter{TenantID: "acme", Tag: "invoice"}, newestFirst(invoices)},
		"recipient any case": {ListFilter{TenantID: "acme", To: "bob@EXAMPLE.com"}, newestFirst(toBob)},
		"recipient and tag":  {ListFilter{TenantID: "acme", To: "bob@example.com", Tag: "invoice"}, newestFirst(both)},
		"nobody":             {ListFilter{TenantID: "acme", To: "nobody@example.com"}, nil},
		"until":              {ListFilter{TenantID: "acme", Until: start.Add(-time.Second)}, nil},
		"since":              {ListFilter{TenantID: "acme", Since: time.Now().Add(time.Second)}, nil},
	}
	for name, c := range cases {
		for _, limit := range []int{1, 2, 50} {
			c.f.Limit = limit
			if got := listed(t, q, c.f, nil); !slices.Equal(got, c.want) {
				t.Errorf("%s, limit %d: got %v, want %v", name, limit, got, c.want)
			}
		}
	}

	// since and until bound by accept time, to the millisecond.
	mid := time.UnixMilli(int64(ulid.MustParse(ulidPart(acme[3])).Time()))
	if got := listed(t, q, ListFilter{TenantID: "acme", Since: mid, Limit: 10}, nil); !slices.Equal(got, newestFirst(acme[3:])) {
		t.Errorf("since the 4th: got %v, want %v", got, newestFirst(acme[3:]))
	}
	if got := listed(t, q, ListFilter{TenantID: "acme", Until: mid, Limit: 10}, nil); !slices.Equal(got, newestFirst(acme[:4])) {
		t.Errorf("until the 4th: got %v, want %v", got, newestFirst(acme[:4]))
	}

	// Messages arriving between pages come before the cursor: a walk
	// answers each older one once and none of them.
	got := listed(t, q, ListFilter{TenantID: "acme", Limit: 2}, func() { enq(tagged("acme", nil, nil)) })
	if !slices.Equal(got, newestFirst(acme)) {
		t.Errorf("walk while messages arrive: got %v, want %v", got, newestFirst(acme))
	}

	// The tenants that queued mail, by id, merged over the partitions.
	for after, want := range map[string][]string{"": {"acme", "globex"}, "acme": {"globex"}, "globex": nil} {
		if got, err := q.KnownTenants(ctx, after, 10); err != nil || !slices.Equal(got, want) {
			t.Errorf("known tenants after %q: %v %v, want %v", after, got, err, want)
		}
	}
	if got, _ := q.KnownTenants(ctx, "", 1); !slices.Equal(got, []string{"acme"}) {
		t.Errorf("known tenants, limit 1: %v", got)
	}

	if _, err := q.List(ctx, ListFilter{Tag: "invoice"}); err != ErrListNeedsTenant {
		t.Errorf("tag across tenants: %v, want ErrListNeedsTenant", err)
	}
}

func cmpULID(a, b string) int {
	ua, ub := ulidPart(a), ulidPart(b)
	switch {
	case ua < ub:
		return -1
	case ua > ub:
		return 1
	}
	return 0
}

// The status filter reads each record: a finished message leaves the
// queued listing and joins the sent one.
func TestListByStatus(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 1)
		ctx := context.Background()
		ids := enqueueN(t, q, 3)
		e := readOne(t, q, "w")
		if _, ok, err := beginOne(ctx, q, e); !ok || err != nil {
			t.Fatalf("begin: %v", err)
		}
		if err := q.Finish(ctx, e, "acme", Outcome{Status: StatusSent, Route: "tenant"}); err != nil {
			t.Fatal(err)
		}
		sent := listed(t, q, ListFilter{TenantID: "acme", Status: StatusSent, Limit: 1}, nil)
		if !slices.Equal(sent, []string{e.ID}) {
			t.Errorf("sent: %v, want [%s]", sent, e.ID)
		}
		queued := listed(t, q, ListFilter{Status: StatusQueued, Limit: 1}, nil)
		want := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == e.ID })
		slices.Reverse(want)
		if !slices.Equal(queued, want) {
			t.Errorf("queued: %v, want %v", queued, want)
		}
	})
}

// Index entries go with their records: a write trims the ids accepted
// before the retention, an index no longer written expires with its
// newest record, and a read skips (and removes) ids whose record is gone.
func TestListEntriesExpireWithRecords(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	q := retentionQueue(t, rdb, 1)
	old, err := q.Enqueue(ctx, tagged("acme", []string{"t"}, []string{"a@example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{listAllKey(0), listTenantKey(0, "acme"), listTagKey(0, "acme", "t"), listToKey(0, "acme", "a@example.com")} {
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Second {
			t.Errorf("%s: TTL %v, want the record's (1s)", k, ttl)
		}
	}
	// Written again within the retention, the sets live on; written after
	// it, they lose the old id and keep the newer.
	time.Sleep(600 * time.Millisecond)
	middle, err := q.Enqueue(ctx, tagged("acme", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := q.Enqueue(ctx, tagged("acme", nil, nil)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{listAllKey(0), listTenantKey(0, "acme")} {
		if err := rdb.ZScore(ctx, k, old.ID).Err(); err != redis.Nil {
			t.Errorf("%s still holds %s past the retention (%v)", k, old.ID, err)
		}
		if err := rdb.ZScore(ctx, k, middle.ID).Err(); err != nil {
			t.Errorf("%s lost %s, accepted within the retention (%v)", k, middle.ID, err)
		}
	}
	for _, k := range []string{listTagKey(0, "acme", "t"), listToKey(0, "acme", "a@example.com")} {
		if n := rdb.Exists(ctx, k).Val(); n != 0 {
			t.Errorf("%s outlived its records", k)
		}
	}

	// A record gone early (evicted) is skipped and its entry removed.
	q2 := newQueue(t, rdb, 1)
	ids := make([]string, 2)
	for i := range ids {
		a, err := q2.Enqueue(ctx, tagged("globex", nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = a.ID
	}
	rdb.Del(ctx, recordKey(0, ids[0]))
	got := listed(t, q2, ListFilter{TenantID: "globex", Limit: 5}, nil)
	if !slices.Equal(got, []string{ids[1]}) {
		t.Errorf("got %v, want [%s]", got, ids[1])
	}
	if err := rdb.ZScore(ctx, listTenantKey(0, "globex"), ids[0]).Err(); err != redis.Nil {
		t.Errorf("entry of a gone record kept: %v", err)
	}
}

// A page looks at no more than ListScanMax entries: past a run of ids
// whose records are gone it answers none, with a Next to go on from, and
// the walk ends with the live message behind them.
func TestListScanIsBounded(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	q := newQueue(t, rdb, 1)
	live := enqueueN(t, q, 1)[0]
	time.Sleep(2 * time.Millisecond)
	var dead []redis.Z
	for range ListScanMax + 10 {
		dead = append(dead, redis.Z{Member: ulid.Make().String() + "-0"})
	}
	if err := rdb.ZAdd(ctx, listTenantKey(0, "acme"), dead...).Err(); err != nil {
		t.Fatal(err)
	}
	page, err := q.List(ctx, ListFilter{TenantID: "acme", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 0 || page.Next == "" {
		t.Fatalf("first page: %d messages, next %q; want none and a next", len(page.Messages), page.Next)
	}
	page, err = q.List(ctx, ListFilter{TenantID: "acme", Limit: 10, After: page.Next})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 1 || page.Messages[0].ID != live || page.Next != "" {
		t.Fatalf("second page: %+v, want the live message and the end", page)
	}
}

// Messages written by one script call share its trim and TTL work on the
// indexes (enqueueScript): each index still outlives every record put
// into it, whichever message of the call has the longest TTL, and a call
// of shorter ones does not shorten it.
func TestListIndexesOutliveRecordsWrittenTogether(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	q := retentionQueue(t, rdb, 1)
	rdb.ConfigResetStat(ctx)
	enqueueTogether := func(scheduledEvery int) []string {
		const n = 200
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				m := tagged("acme", []string{"t"}, nil)
				if scheduledEvery > 0 && i%scheduledEvery == scheduledEvery-1 {
					m.SendAt = time.Now().Add(time.Hour)
				}
				a, err := q.Enqueue(ctx, m)
				if err != nil {
					t.Error(err)
				}
				ids[i] = a.ID
			})
		}
		wg.Wait()
		return ids
	}
	expiresAt := func(key string) int64 {
		t.Helper()
		at, err := rdb.Do(ctx, "PEXPIRETIME", key).Int64()
		if err != nil || at <= 0 {
			t.Fatalf("%s: expiry %d (%v)", key, at, err)
		}
		return at
	}
	check := func(ids []string) {
		t.Helper()
		latest := int64(0)
		for _, id := range ids {
			latest = max(latest, expiresAt(recordKey(0, id)))
		}
		for _, k := range []string{listAllKey(0), listTenantKey(0, "acme"), listTagKey(0, "acme", "t")} {
			if at := expiresAt(k); at < latest {
				t.Errorf("%s expires at %d, before a record of its (%d)", k, at, latest)
			}
		}
	}
	ids := enqueueTogether(7)
	if calls := scriptCalls(t, rdb); calls >= len(ids) {
		t.Fatalf("%d script calls for %d messages: nothing was grouped", calls, len(ids))
	}
	check(ids)
	check(append(ids, enqueueTogether(0)...))
}
