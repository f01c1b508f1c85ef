package queue

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// BenchmarkListTenantPage measures a tenant's listing with
// LISTING_BENCH_MESSAGES (default 100,000) messages stored: 90% of them
// the tenant's (two tags, ten recipients), the rest another tenant's.
// Sub-benchmarks: the first page of 50, a page deep in the listing, a
// page by tag, and a page by a status no message has (the scan's bound,
// ListScanMax entries, is its cost).
func BenchmarkListTenantPage(b *testing.B) {
	n := 100_000
	if v := os.Getenv("LISTING_BENCH_MESSAGES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	rdb := redistest.Start(b).Client(b)
	q := New(rdb, Options{Partitions: 1, Retention: 24 * time.Hour, IdempotencyTTL: time.Minute})
	fill(b, q, n)
	ctx := context.Background()
	deep, err := q.List(ctx, ListFilter{TenantID: "acme", Limit: 1000})
	if err != nil {
		b.Fatal(err)
	}
	for range n * 8 / 10 / 1000 { // walk to 80% of the tenant's messages
		deep, err = q.List(ctx, ListFilter{TenantID: "acme", Limit: 1000, After: deep.Next})
		if err != nil || deep.Next == "" {
			b.Fatalf("walk: %v", err)
		}
	}
	for name, f := range map[string]ListFilter{
		"first":         {TenantID: "acme", Limit: 50},
		"deep":          {TenantID: "acme", Limit: 50, After: deep.Next},
		"tag":           {TenantID: "acme", Tag: "t1", Limit: 50},
		"recipient":     {TenantID: "acme", To: "r3@example.com", Limit: 50},
		"status-absent": {TenantID: "acme", Status: StatusSent, Limit: 50},
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := q.List(ctx, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fill enqueues n messages from 64 goroutines.
func fill(b *testing.B, q *Queue, n int) {
	b.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range next {
				m := msg("", "")
				if i%10 == 9 {
					m.TenantID = "globex"
				}
				m.Tags = []string{"t" + strconv.Itoa(i%2)}
				m.Recipients = []string{"r" + strconv.Itoa(i%10) + "@example.com"}
				if _, err := q.Enqueue(context.Background(), m); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
