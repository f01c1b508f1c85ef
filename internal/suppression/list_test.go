package suppression

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// byteCounter counts the bytes a client's connections read from Redis.
type byteCounter struct{ n atomic.Int64 }

func (b *byteCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return countingConn{c, b}, nil
}

type countingConn struct {
	net.Conn
	b *byteCounter
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.b.n.Add(int64(n))
	return n, err
}

// A walk through a list of 5,000 entries in pages of 100, with addresses
// added and removed meanwhile, meets every address present throughout
// exactly once, in order, and each page reads about its own entries from
// Redis, not the whole list.
func TestListPagesReadOnlyTheirEntries(t *testing.T) {
	t.Run("redis-server", func(t *testing.T) {
		srv := redistest.Start(t)
		var read byteCounter
		lister := redis.NewClient(&redis.Options{Addr: srv.Addr(), Dialer: read.dial})
		t.Cleanup(func() { lister.Close() })
		walkWhileChanging(t, srv.Client(t), lister, &read)
		// The list is never read whole: not to page, not to rebuild the
		// index (the writes kept it whole).
		stats := srv.Client(t).Info(context.Background(), "commandstats").Val()
		for _, cmd := range []string{"hgetall", "hkeys", "hvals", "hscan"} {
			if strings.Contains(stats, "cmdstat_"+cmd+":") {
				t.Errorf("%s ran: %s", strings.ToUpper(cmd), stats)
			}
		}
	})
	t.Run("cluster", func(t *testing.T) {
		c := redistest.StartCluster(t, 3)
		var read byteCounter
		opts, err := redis.ParseClusterURL(c.URL())
		if err != nil {
			t.Fatal(err)
		}
		opts.Dialer = read.dial
		lister := redis.NewClusterClient(opts)
		t.Cleanup(func() { lister.Close() })
		walkWhileChanging(t, c.Client(t), lister, &read)
	})
	t.Run("miniredis", func(t *testing.T) {
		m := miniredis.RunT(t)
		var read byteCounter
		lister := redis.NewClient(&redis.Options{Addr: m.Addr(), Dialer: read.dial})
		writer := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { lister.Close(); writer.Close() })
		walkWhileChanging(t, writer, lister, &read)
	})
}

// walkWhileChanging fills a list through writer, then pages through it
// with lister while writer adds and removes other addresses.
func walkWhileChanging(t *testing.T, writer, lister redis.UniversalClient, read *byteCounter) {
	ctx := context.Background()
	w, l := New(writer), New(lister)
	const n, limit = 5000, 100
	fill(t, w, n)

	stop := make(chan struct{})
	var churned sync.WaitGroup
	churned.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Before, among and after the addresses that stay.
			for _, email := range []string{fmt.Sprintf("a-%d@example.com", i), fmt.Sprintf("keep-%04d-x@example.com", i%n),
				fmt.Sprintf("z-%d@example.com", i)} {
				if _, err := w.Add(ctx, "acme", Entry{Email: email, Source: "manual"}); err != nil {
					t.Error(err)
					return
				}
			}
			if err := w.Remove(ctx, "acme", fmt.Sprintf("keep-%04d-x@example.com", (i+n/2)%n)); err != nil && !errors.Is(err, ErrNotFound) {
				t.Error(err)
				return
			}
		}
	})
	defer func() { close(stop); churned.Wait() }()

	// A cluster client's first call reads the server's command table
	// (COMMAND, some 100 KB): not part of any page.
	if _, err := l.List(ctx, "other", "", 1); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	after, pages, most := "", 0, int64(0)
	for {
		before := read.n.Load()
		page, err := l.List(ctx, "acme", after, limit)
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, read.n.Load()-before)
		pages++
		for _, e := range page {
			if e.Email <= after {
				t.Fatalf("page %d: %q after %q: out of order", pages, e.Email, after)
			}
			seen[e.Email]++
			after = e.Email
		}
		if len(page) < limit {
			break
		}
	}
	for i := range n {
		if email := fmt.Sprintf("keep-%04d@example.com", i); seen[email] != 1 {
			t.Fatalf("%s seen %d times in %d pages", email, seen[email], pages)
		}
	}
	for email, k := range seen {
		if k != 1 {
			t.Fatalf("%s seen %d times", email, k)
		}
	}
	// An entry is about 90 bytes: a page of 100 is some 10 KB, the whole
	// list over 450 KB.
	t.Logf("%d pages, at most %d bytes read for one", pages, most)
	if most > 32<<10 {
		t.Errorf("a page of %d read %d bytes from Redis: more than its entries", limit, most)
	}
}

// fill adds keep-0000@example.com to keep-<n-1>@example.com.
func fill(t *testing.T, s *Store, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := s.Add(context.Background(), "acme", Entry{Email: fmt.Sprintf("keep-%04d@example.com", i),
					Reason: "550 5.1.1 no such user", Source: SourceBounce, Code: "5.1.1"}); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// A list written before the index existed (a hash alone), or changed by an
// older replica during an upgrade, is paged in full and in order: the
// index is built from the hash when it does not match it.
func TestListOfAListWrittenWithoutIndex(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := New(rdb)
		for _, email := range []string{"c@example.com", "a@example.com", "b@example.com"} {
			if err := rdb.HSet(ctx, key("acme"), email, `{"email":"`+email+`","source":"bounce"}`).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if got := emails(t, s, "", 2); got != "a@example.com b@example.com" {
			t.Fatalf("first page of an unindexed list: %s", got)
		}
		if got := emails(t, s, "b@example.com", 2); got != "c@example.com" {
			t.Fatalf("second page: %s", got)
		}
		// An older replica adds one address and removes another: the
		// sizes still match, the sets do not.
		rdb.HDel(ctx, key("acme"), "a@example.com")
		rdb.HSet(ctx, key("acme"), "d@example.com", `{"email":"d@example.com","source":"manual"}`)
		if got := emails(t, s, "", 10); got != "b@example.com c@example.com d@example.com" {
			t.Fatalf("after an older replica's writes: %s", got)
		}
		if _, err := s.Add(ctx, "acme", Entry{Email: "A@example.com", Source: "manual"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(ctx, "acme", "c@example.com"); err != nil {
			t.Fatal(err)
		}
		if got := emails(t, s, "", 10); got != "a@example.com b@example.com d@example.com" {
			t.Fatalf("after writes: %s", got)
		}
	})
}

func emails(t *testing.T, s *Store, after string, limit int) string {
	t.Helper()
	page, err := s.List(context.Background(), "acme", after, limit)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range page {
		out = append(out, e.Email)
	}
	return strings.Join(out, " ")
}
