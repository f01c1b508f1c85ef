package ratelimit

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

var perMinute60 = Limit{PerMinute: 60, PerDay: 2000}

func mustAllow(t *testing.T, l *Limiter, tenant string, lim Limit, cost int) Result {
	t.Helper()
	r, err := l.Allow(context.Background(), tenant, lim, cost)
	if err != nil {
		t.Fatalf("Allow(%s, %d): %v", tenant, cost, err)
	}
	return r
}

func mustDeny(t *testing.T, l *Limiter, tenant string, lim Limit, cost int) Result {
	t.Helper()
	r, err := l.Allow(context.Background(), tenant, lim, cost)
	var denied *DeniedError
	if !errors.As(err, &denied) || r.Allowed {
		t.Fatalf("Allow(%s, %d) = %+v, %v; want a refusal", tenant, cost, r, err)
	}
	return r
}

// shift moves a window's clock state back by d, as if d had passed.
func shift(t *testing.T, rdb redis.UniversalClient, key string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	tat, err := rdb.Get(ctx, key).Int64()
	if err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx, key, strconv.FormatInt(tat-d.Microseconds(), 10), time.Hour)
}

func TestBurstThenRefusalThenRefill(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		l := New(rdb)

		for i := range 60 {
			r := mustAllow(t, l, "acme", perMinute60, 1)
			if r.Remaining != 59-i || r.Limit != 60 {
				t.Fatalf("request %d: %+v", i+1, r)
			}
		}
		r := mustDeny(t, l, "acme", perMinute60, 1)
		if r.RetryAfter <= 0 || r.RetryAfter > time.Second || r.Limit != 60 || r.Remaining != 0 {
			t.Fatalf("61st: %+v, want a wait of at most one second", r)
		}
		if r.ResetAfter < 59*time.Second || r.ResetAfter > 60*time.Second {
			t.Errorf("reset after %v, want about a minute", r.ResetAfter)
		}

		// Half a minute later: 30 more, one per elapsed second.
		shift(t, rdb, "outbound:rl:{acme}:acme:minute", 30*time.Second)
		for range 30 {
			mustAllow(t, l, "acme", perMinute60, 1)
		}
		mustDeny(t, l, "acme", perMinute60, 1)

		// A 20-recipient message needs 20 seconds of refill.
		shift(t, rdb, "outbound:rl:{acme}:acme:minute", 10*time.Second)
		r = mustDeny(t, l, "acme", perMinute60, 20)
		if r.RetryAfter < 9*time.Second || r.RetryAfter > 10*time.Second {
			t.Errorf("retry after %v for 20 with 10 refilled, want about 10s", r.RetryAfter)
		}
		if got := mustAllow(t, l, "acme", perMinute60, 10); got.Remaining != 0 {
			t.Errorf("after spending the 10 refilled: %+v", got)
		}
	})
}

func TestRefusalSpendsNothing(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		l := New(rdb)
		ctx := context.Background()
		small := Limit{PerMinute: 60, PerDay: 10}
		mustAllow(t, l, "acme", small, 10)
		minuteBefore := rdb.Get(ctx, "outbound:rl:{acme}:acme:minute").Val()
		r := mustDeny(t, l, "acme", small, 1)
		if r.Limit != 10 {
			t.Errorf("binding window limit %d, want the day's 10", r.Limit)
		}
		if r.RetryAfter < time.Hour {
			t.Errorf("retry after %v, want hours for a daily budget", r.RetryAfter)
		}
		if after := rdb.Get(ctx, "outbound:rl:{acme}:acme:minute").Val(); after != minuteBefore {
			t.Fatal("the day's refusal spent from the minute window")
		}
		// And the other way round: a minute refusal leaves the day alone.
		l2 := Limit{PerMinute: 5, PerDay: 100}
		mustAllow(t, l, "beta", l2, 5)
		dayBefore := rdb.Get(ctx, "outbound:rl:{beta}:beta:day").Val()
		mustDeny(t, l, "beta", l2, 1)
		if rdb.Get(ctx, "outbound:rl:{beta}:beta:day").Val() != dayBefore {
			t.Fatal("the minute's refusal spent from the day window")
		}
	})
}

func TestTenantsAreIsolatedAndReplicasShare(t *testing.T) {
	srv := redistest.Start(t)
	a, b := New(srv.Client(t)), New(srv.Client(t)) // two replicas, two connection pools
	for i := range 60 {
		l := a
		if i%2 == 1 {
			l = b
		}
		mustAllow(t, l, "acme", perMinute60, 1)
	}
	mustDeny(t, a, "acme", perMinute60, 1)
	mustDeny(t, b, "acme", perMinute60, 1)
	if r := mustAllow(t, b, "other", perMinute60, 1); r.Remaining != 59 {
		t.Fatalf("another tenant's budget was touched: %+v", r)
	}
}

func TestBindingWindowIsTheTighter(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	l := New(rdb)
	r := mustAllow(t, l, "acme", Limit{PerMinute: 60, PerDay: 20}, 5)
	if r.Limit != 20 || r.Remaining != 15 {
		t.Fatalf("%+v, want the day window (20, 15 left)", r)
	}
	if _, err := l.Allow(context.Background(), "acme", Limit{}, 1); err == nil {
		t.Fatal("zero limits accepted")
	}
}

func TestPaceSpacesSends(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		l := New(rdb)
		if _, err := l.Pace(context.Background(), "account", 30); err != nil {
			t.Fatal(err)
		}
		r, err := l.Pace(context.Background(), "account", 30)
		var denied *DeniedError
		if !errors.As(err, &denied) || r.RetryAfter < 1900*time.Millisecond || r.RetryAfter > 2*time.Second {
			t.Fatalf("second send at 30/min: %+v %v, want a wait of about 2s", r, err)
		}
		shift(t, rdb, "outbound:pace:{account}", 2*time.Second)
		if _, err := l.Pace(context.Background(), "account", 30); err != nil {
			t.Fatalf("after 2s: %v", err)
		}
	})
}

// BenchmarkAllow is one limiter check (one script round trip) against a
// local redis-server; BenchmarkSet is a plain SET to the same server from
// the same client, for the ratio.
func BenchmarkAllow(b *testing.B) {
	l := New(redistest.Start(b).Client(b))
	ctx := context.Background()
	lim := Limit{PerMinute: 1 << 30, PerDay: 1 << 30}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Allow(ctx, "acme", lim, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSet(b *testing.B) {
	rdb := redistest.Start(b).Client(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestManySpendsInOneScript spends from the same windows many times in one
// script call, as the accept script does for a batch of one tenant's
// messages: each spend sees the ones before it, refusals spend nothing,
// and gcra_flush leaves the windows where the last spend put them.
func TestManySpendsInOneScript(t *testing.T) {
	spendEach := redis.NewScript(Lua + `
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local ok, rate, tats = gcra_check(KEYS, ARGV, 3, tonumber(ARGV[2]))
  if ok then
    gcra_commit(KEYS, tats)
    out[i] = rate[1]
  else
    out[i] = -1
  end
end
gcra_flush()
return out
`)
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		lim := Limit{PerMinute: 10, PerDay: 13}
		ws := TenantWindows("{acme}", "acme", lim)
		keys, args, err := Args(ws)
		if err != nil {
			t.Fatal(err)
		}
		// Cost 2, 7 times: 5 fit the minute's 10, then refusals.
		got, err := spendEach.Run(ctx, rdb, keys, append([]any{7, 2}, args...)...).Int64Slice()
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{8, 6, 4, 2, 0, -1, -1}; !slices.Equal(got, want) {
			t.Fatalf("remaining after each spend %v, want %v", got, want)
		}
		l := New(rdb)
		// The day's window kept the 10 spent: 3 are left today, none this
		// minute.
		mustDeny(t, l, "acme", lim, 1)
		for _, w := range ws {
			shift(t, rdb, w.Key, time.Minute)
		}
		mustAllow(t, l, "acme", lim, 3)
		mustDeny(t, l, "acme", lim, 1)
	})
}

// A charge names every window with what the script needs to spend it.
func TestCharge(t *testing.T) {
	got, err := Charge(TenantWindows("{q1}", "acme", perMinute60), 3)
	want := "3 outbound:rl:{q1}:acme:minute 60 60000000 60 outbound:rl:{q1}:acme:day 2000 86400000000 2000"
	if err != nil || got != want {
		t.Errorf("Charge = %q, %v; want %q", got, err, want)
	}
	if _, err := Charge(TenantWindows("{q1}", "acme", Limit{}), 1); err == nil {
		t.Error("a charge on a window of no allowance was written")
	}
}

// Peek reads what each window has left as Allow would answer it, and
// spends nothing: peeking again, or after a refusal, reads the same.
func TestPeekSpendsNothing(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		l := New(rdb)
		lim := Limit{PerMinute: 10, PerDay: 100}
		ws := TenantWindows("{acme}", "acme", lim)
		fresh, err := l.Peek(context.Background(), ws...)
		if err != nil || len(fresh) != 2 || fresh[0].Remaining != 10 || fresh[1].Remaining != 100 || fresh[0].Limit != 10 {
			t.Fatalf("Peek of unused windows = %+v, %v", fresh, err)
		}
		spent := mustAllow(t, l, "acme", lim, 6)
		for range 3 {
			got, err := l.Peek(context.Background(), ws...)
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Remaining != spent.Remaining || got[0].Remaining != 4 || got[1].Remaining != 94 || got[0].ResetAfter <= 0 {
				t.Fatalf("Peek after spending 6 = %+v, want 4 and 94 left (Allow said %+v)", got, spent)
			}
		}
		mustAllow(t, l, "acme", lim, 4) // the peeks left all of it
		mustDeny(t, l, "acme", lim, 1)
		if got, _ := l.Peek(context.Background(), ws...); got[0].Remaining != 0 || got[1].Remaining != 90 {
			t.Fatalf("Peek after the refusal = %+v", got)
		}
	})
}
