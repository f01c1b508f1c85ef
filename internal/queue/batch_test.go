package queue

import (
	"bytes"
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

// Large messages accepted at once share script calls only up to
// batchBytes: no call carries more (but for a lone message), and every
// message is stored.
func TestEnqueueBatchesBoundedByBytes(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	q := newQueue(t, rdb, 1)
	sizes := &scriptSizes{}
	rdb.AddHook(sizes)
	payload := bytes.Repeat([]byte("x"), 700<<10)
	const n = 48
	errs, _ := redistest.ConcurrentPipelines(rdb, n, func(int) error {
		m := msg("", "")
		m.Payload = payload
		_, err := q.Enqueue(context.Background(), m)
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if xlen := rdb.XLen(context.Background(), streamKey(0)).Val(); xlen != n {
		t.Fatalf("stream holds %d entries, want %d", xlen, n)
	}
	calls := sizes.get()
	t.Logf("%d messages of %d KB in %d script calls", n, len(payload)>>10, len(calls))
	for _, c := range calls {
		// The call's own framing (script sha, counts) adds a few bytes to
		// what its invocations weigh.
		if c.invocations > 1 && c.bytes > batchBytes+1024 {
			t.Errorf("a call of %d messages carries %d bytes, over the bound of %d", c.invocations, c.bytes, batchBytes)
		}
	}
	if len(calls) >= n {
		t.Errorf("%d script calls for %d messages: nothing was grouped", len(calls), n)
	}
}

// scriptSizes is a go-redis hook recording the size and invocation count
// of every batch script call (EVALSHA or EVAL) a client sends.
type scriptSizes struct {
	mu    sync.Mutex
	calls []scriptCall
}

type scriptCall struct{ invocations, bytes int }

func (s *scriptSizes) DialHook(next redis.DialHook) redis.DialHook { return next }

func (s *scriptSizes) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		s.record(cmd)
		return next(ctx, cmd)
	}
}

func (s *scriptSizes) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			s.record(cmd)
		}
		return next(ctx, cmds)
	}
}

// record reads a call laid out as batchScript sends it: script, key
// count, keys, then the invocation count and the rest.
func (s *scriptSizes) record(cmd redis.Cmder) {
	if name := cmd.Name(); name != "evalsha" && name != "eval" {
		return
	}
	args := cmd.Args()
	size := 0
	for _, a := range args {
		switch v := a.(type) {
		case string:
			size += len(v)
		case []byte:
			size += len(v)
		default:
			size += 20
		}
	}
	nkeys, _ := args[2].(int)
	invocations, _ := args[3+nkeys].(int)
	s.mu.Lock()
	s.calls = append(s.calls, scriptCall{invocations, size})
	s.mu.Unlock()
}

func (s *scriptSizes) get() []scriptCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]scriptCall(nil), s.calls...)
}
