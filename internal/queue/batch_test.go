package queue

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// A failing invocation fails alone: the others in its call run and
// answer, on both backends (miniredis runs Lua with gopher-lua).
func TestBatchScriptErrorsStayWithTheirInvocation(t *testing.T) {
	script := newBatchScript(`local function double(x) return 2 * tonumber(x) end`, "", `
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
