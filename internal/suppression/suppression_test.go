package suppression

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

func TestStore(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		s := New(rdb)
		ctx := context.Background()
		if _, err := s.Add(ctx, "acme", Entry{Email: "Gone@Example.com", Reason: "550 5.1.1 no such user", Source: "bounce", Code: "5.1.1"}); err != nil {
			t.Fatal(err)
		}
		s.Add(ctx, "acme", Entry{Email: "b@example.com", Reason: "asked to stop", Source: "manual"})
		got, err := s.Filter(ctx, "acme", []string{"gone@example.COM", "ok@example.com"})
		if err != nil || len(got) != 1 || got["gone@example.COM"].Code != "5.1.1" {
			t.Fatalf("filter: %v %v", got, err)
		}
		if other, _ := s.Filter(ctx, "other", []string{"gone@example.com"}); len(other) != 0 {
			t.Fatal("another tenant's list applied")
		}
		list, _ := s.List(ctx, "acme", "", 10)
		if len(list) != 2 || list[0].Email != "b@example.com" {
			t.Fatalf("list: %+v", list)
		}
		if page, _ := s.List(ctx, "acme", "b@example.com", 10); len(page) != 1 || page[0].Email != "gone@example.com" {
			t.Fatalf("page: %+v", page)
		}
		if err := s.Remove(ctx, "acme", "GONE@example.com"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "acme", "gone@example.com"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after remove: %v", err)
		}
	})
	for code, want := range map[string]bool{"5.1.1": true, "5.1.10": true, "5.7.1": false, "4.1.1": false, "": false} {
		if HardBounce(code) != want {
			t.Errorf("HardBounce(%q) = %v", code, !want)
		}
	}
}

// Tenants whose list sizes are not cached yet, filtered at the same time,
// have their sizes read in shared pipelines, and each gets its own list.
func TestFilterOfManyNewTenantsSharesRoundTrips(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	s := New(rdb)
	stop := s.UseCache(time.Hour)
	defer stop()
	ctx := context.Background()
	const n = 200
	for i := 0; i < n; i += 10 { // every tenth tenant has suppressed gone@example.com
		if _, err := s.Add(ctx, "t"+strconv.Itoa(i), Entry{Email: "gone@example.com", Source: "manual"}); err != nil {
			t.Fatal(err)
		}
	}
	errs, pipelines := redistest.ConcurrentPipelines(rdb, n, func(i int) error {
		got, err := s.Filter(ctx, "t"+strconv.Itoa(i), []string{"gone@example.com", "ok@example.com"})
		if err == nil && (len(got) == 1) != (i%10 == 0) {
			err = fmt.Errorf("t%d: filter found %v", i, got)
		}
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d list sizes read in %d pipelines", n, pipelines)
	if pipelines >= n {
		t.Errorf("%d pipelines for %d tenants: no size lookups were grouped", pipelines, n)
	}
}
