package outage

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// op is a store method as the packages write them: its Redis error
// wrapped with a prefix, and marked.
func op(ctx context.Context, rdb redis.UniversalClient, cmd ...any) (err error) {
	defer Mark(&err)
	if err := rdb.Do(ctx, cmd...).Err(); err != nil {
		return fmt.Errorf("store: op: %w", err)
	}
	return nil
}

// What a real Redis answers when it cannot serve is an outage; what it
// answers about the request (no such key, wrong type, an unknown command)
// is not, and keeps its own identity either way.
func TestMarkRecognisesWhatRedisAnswersWhenDown(t *testing.T) {
	ctx := context.Background()
	up := redistest.Start(t)
	rdb := up.Client(t)
	if err := rdb.Set(ctx, "s", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	requestErrors := map[string][]any{
		"no such key":  {"GET", "missing"},
		"wrong type":   {"LPUSH", "s", "x"},
		"unknown verb": {"NOSUCHCOMMAND"},
	}
	for name, cmd := range requestErrors {
		err := op(ctx, rdb, cmd...)
		if err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v is marked unavailable (or no error)", name, err)
		}
		if name == "no such key" && !errors.Is(err, redis.Nil) {
			t.Errorf("%s: %v lost redis.Nil", name, err)
		}
	}

	// A replica of a primary that is gone: writes are refused READONLY,
	// and with stale reads off, reads MASTERDOWN.
	replica := redistest.Start(t)
	rrdb := replica.Client(t)
	for _, cmd := range [][]any{{"CONFIG", "SET", "replica-serve-stale-data", "no"}, {"REPLICAOF", "127.0.0.1", "1"}} {
		if err := rrdb.Do(ctx, cmd...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	stopped := redistest.Start(t)
	srdb := stopped.Client(t)
	stopped.Stop(t)
	closed := up.Client(t)
	closed.Close()
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	<-short.Done()

	outages := map[string]error{
		"read-only replica":  op(ctx, rrdb, "SET", "k", "v"),
		"replica, no master": op(ctx, rrdb, "GET", "k"),
		"refused":            op(ctx, srdb, "GET", "k"),
		"closed client":      op(ctx, closed, "GET", "k"),
		"caller's deadline":  op(short, rdb, "GET", "k"),
	}
	for name, err := range outages {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v is not marked unavailable", name, err)
		}
		if err != nil && err.Error() != errors.Unwrap(err).Error() {
			t.Errorf("%s: marking changed the text to %q", name, err)
		}
	}
}

func TestMarkLeavesNilAndMarkedAlone(t *testing.T) {
	var err error
	Mark(&err)
	if err != nil {
		t.Fatalf("nil became %v", err)
	}
	err = fmt.Errorf("x: %w", context.DeadlineExceeded)
	Mark(&err)
	once := err
	Mark(&err)
	if err != once {
		t.Fatal("marked twice")
	}
}
