package suppression

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

func TestUnlessBouncedLeavesBouncesAlone(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		s := New(rdb)
		ctx := context.Background()
		bounce := Entry{Email: "gone@example.com", Reason: "550 5.1.1 no such user", Source: SourceBounce, Code: "5.1.1"}
		if _, err := s.Add(ctx, "acme", bounce); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddUnlessBounced(ctx, "acme", Entry{Email: "Gone@Example.com", Reason: "mine", Source: "manual"}); !errors.Is(err, ErrBounced) {
			t.Fatalf("replace a bounce: %v", err)
		}
		if err := s.RemoveUnlessBounced(ctx, "acme", "GONE@example.com"); !errors.Is(err, ErrBounced) {
			t.Fatalf("remove a bounce: %v", err)
		}
		if e, err := s.Get(ctx, "acme", "gone@example.com"); err != nil || e.Source != SourceBounce || e.Reason != bounce.Reason {
			t.Fatalf("the bounce entry changed: %+v %v", e, err)
		}

		added, err := s.AddUnlessBounced(ctx, "acme", Entry{Email: "Asked@Example.com", Reason: "asked to stop", Source: "manual"})
		if err != nil || added.Email != "asked@example.com" || added.CreatedAt.IsZero() {
			t.Fatalf("add: %+v %v", added, err)
		}
		if _, err := s.AddUnlessBounced(ctx, "acme", Entry{Email: "asked@example.com", Reason: "again", Source: "manual"}); err != nil {
			t.Fatalf("replace a manual entry: %v", err)
		}
		if e, _ := s.Get(ctx, "acme", "asked@example.com"); e.Reason != "again" {
			t.Fatalf("manual entry: %+v", e)
		}
		if err := s.RemoveUnlessBounced(ctx, "acme", "asked@example.com"); err != nil {
			t.Fatalf("remove a manual entry: %v", err)
		}
		if err := s.RemoveUnlessBounced(ctx, "acme", "asked@example.com"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("remove twice: %v", err)
		}
		// The operator's Remove still takes a bounce off.
		if err := s.Remove(ctx, "acme", "gone@example.com"); err != nil {
			t.Fatal(err)
		}
	})
}
