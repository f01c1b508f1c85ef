package queue

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// finishAs delivers the next entry and finishes it with st for tenantID.
func finishAs(t *testing.T, q *Queue, tenantID string, st Status) {
	t.Helper()
	ctx := context.Background()
	e := readOne(t, q, "w")
	if _, ok, err := beginOne(ctx, q, e); !ok || err != nil {
		t.Fatalf("begin: %v", err)
	}
	if err := q.Finish(ctx, e, tenantID, Outcome{Status: st, Route: "tenant"}); err != nil {
		t.Fatal(err)
	}
}

func TestCountsOutcomes(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) { countsOutcomes(t, newQueue(t, rdb, 2)) })
}

func TestCountsOutcomesOnCluster(t *testing.T) {
	countsOutcomes(t, newQueue(t, redistest.StartCluster(t, 3).Client(t), 6))
}

func countsOutcomes(t *testing.T, q *Queue) {
	ctx := context.Background()
	for _, tenant := range []string{"acme", "globex"} {
		for _, st := range []Status{StatusSent, StatusSent, StatusFailed, StatusDeferred, StatusQueued} {
			if _, err := q.Enqueue(ctx, tagged(tenant, nil, nil)); err != nil {
				t.Fatal(err)
			}
			finishAs(t, q, tenant, st)
		}
	}
	for tenant, scale := range map[string]int64{"acme": 1, "": 2} {
		c, err := q.Counts(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Minutes) != 60 || len(c.Hours) != 24 {
			t.Fatalf("%d minutes, %d hours", len(c.Minutes), len(c.Hours))
		}
		for _, bs := range [][]Bucket{c.Minutes, c.Hours} {
			var sum = map[Status]int64{}
			for _, b := range bs {
				for st, n := range b.Counts {
					sum[st] += n
				}
			}
			want := map[Status]int64{StatusSent: 2 * scale, StatusFailed: scale, StatusDeferred: scale}
			if len(sum) != len(want) || sum[StatusSent] != want[StatusSent] || sum[StatusFailed] != want[StatusFailed] || sum[StatusDeferred] != want[StatusDeferred] {
				t.Errorf("tenant %q: counted %v, want %v", tenant, sum, want)
			}
			// Now is in the last bucket (or the one before, past a boundary).
			if n := bs[len(bs)-1].Counts[StatusSent] + bs[len(bs)-2].Counts[StatusSent]; n != 2*scale {
				t.Errorf("tenant %q: the latest buckets hold %d sent", tenant, n)
			}
		}
	}
}

// Messages of several tenants accepted together (in shared script calls,
// which add each call's tenants to the known tenants once) leave every
// one of them known.
func TestKnownTenantsOfMessagesAcceptedTogether(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := newQueue(t, rdb, 1)
		var want []string
		for i := range 8 {
			want = append(want, "tenant-"+strconv.Itoa(i))
		}
		var wg sync.WaitGroup
		for i := range 160 {
			wg.Go(func() {
				m := msg("", "")
				m.TenantID = want[i%len(want)]
				if _, err := q.Enqueue(context.Background(), m); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got, err := q.KnownTenants(context.Background(), "", 100); err != nil || !slices.Equal(got, want) {
			t.Errorf("known tenants %v (%v), want %v", got, err, want)
		}
	})
}
