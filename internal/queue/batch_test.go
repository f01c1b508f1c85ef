package queue

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// A failing invocation fails alone: the others in its call run and
// answer, on both backends (miniredis runs Lua with gopher-lua).
func TestBatchScriptErrorsStayWithTheirInvocation(t *testing.T) {
	script := newBatchScript(`local function double(x) return 2 * tonumber(x) end`, `
if ARGV[1] == 'boom' then error('boom asked for') end
redis.call('SET', KEYS[1], double(ARGV[1]))
if ARGV[1] == '0' then return false end
return {KEYS[1], double(ARGV[1])}
`)
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		replies, err := script.run(ctx, rdb, []invocation{
			{[]string{"{b}one"}, []any{1}},
			{[]string{"{b}two"}, []any{"boom"}},
			{[]string{"{b}three"}, []any{3}},
			{[]string{"{b}zero"}, []any{0}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(replies) != 4 {
			t.Fatalf("%d replies, want 4: %v", len(replies), replies)
		}
		if got, ok := replies[0].([]any); !ok || got[0] != "{b}one" || got[1] != int64(2) {
			t.Errorf("first reply %#v", replies[0])
		}
		if err := replyErr(replies[1]); err == nil || !strings.Contains(err.Error(), "boom asked for") {
			t.Errorf("second reply %#v, want the error it raised", replies[1])
		}
		if got, ok := replies[2].([]any); !ok || got[1] != int64(6) {
			t.Errorf("third reply %#v", replies[2])
		}
		if replies[3] != nil { // false comes back as a nil reply
			t.Errorf("fourth reply %#v, want nil", replies[3])
		}
		for key, want := range map[string]string{"{b}one": "2", "{b}three": "6", "{b}zero": "0"} {
			if got, err := rdb.Get(ctx, key).Result(); err != nil || got != want {
				t.Errorf("%s = %q, %v; want %q", key, got, err, want)
			}
		}
		if n, _ := rdb.Exists(ctx, "{b}two").Result(); n != 0 {
			t.Error("the failing invocation wrote")
		}
	})
}

// Calls that arrive while one is on its way leave together in the next,
// each with its own reply.
func TestCommitterGroupsWhatArrivesMeanwhile(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	c := &committer{max: 100, run: func(_ context.Context, calls []invocation) ([]any, error) {
		mu.Lock()
		sizes = append(sizes, len(calls))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			close(started)
			<-release
		}
		out := make([]any, len(calls))
		for i, inv := range calls {
			out[i] = inv.args[0]
		}
		return out, nil
	}}
	ctx := context.Background()
	var wg sync.WaitGroup
	replies := make([]any, 11)
	wg.Go(func() { replies[0], _ = c.do(ctx, invocation{args: []any{0}}) })
	<-started
	for i := 1; i <= 10; i++ {
		wg.Go(func() { replies[i], _ = c.do(ctx, invocation{args: []any{i}}) })
	}
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.pending) == 10 })
	close(release)
	wg.Wait()
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 10 {
		t.Errorf("call sizes %v, want [1 10]", sizes)
	}
	for i, r := range replies {
		if r != i {
			t.Errorf("caller %d got %v", i, r)
		}
	}
}

// A call that fails as a whole fails every invocation in it; a caller
// whose context ends stops waiting at once.
func TestCommitterErrorsAndCancellation(t *testing.T) {
	release := make(chan struct{})
	boom := errors.New("connection lost")
	c := &committer{max: 100, run: func(_ context.Context, calls []invocation) ([]any, error) {
		<-release
		return nil, boom
	}}
	var wg sync.WaitGroup
	var leadErr error
	wg.Go(func() { _, leadErr = c.do(context.Background(), invocation{}) })
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.running && len(c.pending) == 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.do(ctx, invocation{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled caller got %v", err)
	}
	close(release)
	wg.Wait()
	if !errors.Is(leadErr, boom) {
		t.Errorf("leader got %v, want the call's error", leadErr)
	}
}

// Many messages accepted at once from many goroutines take far fewer
// script calls than messages, and each gets its own id and record.
func TestEnqueueGroupsConcurrentMessages(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	q := newQueue(t, rdb, 1)
	ctx := context.Background()
	rdb.ConfigResetStat(ctx)
	const n = 400
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m := msg("key-"+strconv.Itoa(i), "h")
			a, err := q.Enqueue(ctx, m)
			if err != nil {
				t.Error(err)
			}
			ids[i] = a.ID
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("id %s given twice", id)
		}
		seen[id] = true
		if _, err := q.Get(ctx, id); err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
	}
	if xlen := rdb.XLen(ctx, streamKey(0)).Val(); xlen != n {
		t.Errorf("stream holds %d entries, want %d", xlen, n)
	}
	calls := scriptCalls(t, rdb)
	t.Logf("%d messages in %d script calls", n, calls)
	if calls >= n {
		t.Errorf("%d script calls for %d messages: nothing was grouped", calls, n)
	}
}

// scriptCalls is how many EVALSHA and EVAL calls Redis has counted.
func scriptCalls(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, line := range strings.Split(info, "\r\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(line[strings.Index(line, ":")+1:], "calls="), ",")
		n, _ := strconv.Atoi(calls)
		total += n
	}
	return total
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
