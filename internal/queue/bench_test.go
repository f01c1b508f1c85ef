package queue

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/redistest"
)

// BenchmarkEnqueue is the accept path's one Redis round trip (record +
// stream entry + idempotency check in one script) for a 1 KB payload;
// BenchmarkXAdd is a bare XADD of the same payload to the same Redis, the
// floor it stands on. Compare the two within one run.
func BenchmarkEnqueue(b *testing.B) {
	q, m := benchQueue(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := q.Enqueue(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkXAdd(b *testing.B) {
	rdb := redistest.Start(b).Client(b)
	payload := strings.Repeat("x", 1024)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "bench", Values: []any{"payload", payload}}).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueueConcurrent is the same write from 32 goroutines per CPU
// at once, as a busy API replica makes it: messages that arrive together
// share a script call (group commit).
func BenchmarkEnqueueConcurrent(b *testing.B) {
	q, m := benchQueue(b)
	b.ReportAllocs()
	enqueueAtOnce(b, q, m)
}

// BenchmarkEnqueueRedisCPU is BenchmarkEnqueueConcurrent with the tenant's
// rate limit spent, as the service accepts, and reports Redis's own CPU
// time per message (redis-µs/op) beside the commands the scripts ran.
func BenchmarkEnqueueRedisCPU(b *testing.B) {
	q, m := benchQueue(b)
	m.Cost, m.Limit = 1, ratelimit.Limit{PerMinute: 1 << 30, PerDay: 1 << 30}
	meter := startRedisMeter(b, q)
	enqueueAtOnce(b, q, m)
	meter.report(b.N)
}

// BenchmarkDeliverRedisCPU is the queue's side of delivering: messages
// read 64 at a time, begun together and finished concurrently (no event
// written, as when no webhook listens). It reports Redis's own CPU time
// per message beside the commands the scripts ran.
func BenchmarkDeliverRedisCPU(b *testing.B) {
	q, m := benchQueue(b)
	ctx := context.Background()
	if err := q.EnsureGroups(ctx); err != nil {
		b.Fatal(err)
	}
	enqueueAtOnce(b, q, m)
	meter := startRedisMeter(b, q)
	for done := 0; done < b.N; {
		es, err := q.Read(ctx, 0, "c1", 64, 10*time.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		started, err := q.Begin(ctx, es)
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, st := range started {
			wg.Go(func() {
				if err := q.Finish(ctx, st.Entry, "acme", Outcome{Status: StatusSent, Route: "tenant",
					Attempts: []Attempt{{At: time.Now(), SMTPCode: 250}}, Unheard: true}); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		done += len(es)
	}
	meter.report(b.N)
}

// enqueueAtOnce enqueues m b.N times from 32 goroutines per CPU.
func enqueueAtOnce(b *testing.B, q *Queue, m NewMessage) {
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := q.Enqueue(context.Background(), m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// redisMeter measures Redis's own CPU time from its start, with the
// commands counted since.
type redisMeter struct {
	b   *testing.B
	rdb *redis.Client
	cpu float64
}

// startRedisMeter resets q's Redis's command counts and starts the timer.
func startRedisMeter(b *testing.B, q *Queue) redisMeter {
	rdb := q.rdb.(*redis.Client)
	if err := rdb.ConfigResetStat(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
	m := redisMeter{b: b, rdb: rdb, cpu: redisCPU(b, rdb)}
	b.ResetTimer()
	return m
}

// report stops the timer and reports Redis's CPU per message over n
// messages (redis-µs/op), logging each command's count and time.
func (m redisMeter) report(n int) {
	m.b.StopTimer()
	m.b.ReportMetric((redisCPU(m.b, m.rdb)-m.cpu)*1e6/float64(n), "redis-µs/op")
	stats, _ := m.rdb.Info(context.Background(), "commandstats").Result()
	for _, line := range strings.Split(stats, "\n") {
		if n > 1000 && strings.HasPrefix(line, "cmdstat_") {
			m.b.Log(strings.TrimSpace(line))
		}
	}
}

func redisCPU(b *testing.B, rdb *redis.Client) float64 {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return sum
}

// benchQueue is a one-partition queue on a fresh redis-server and a 1 KB
// message for it.
func benchQueue(b *testing.B) (*Queue, NewMessage) {
	rdb := redistest.Start(b).Client(b)
	q := New(rdb, Options{Partitions: 1, Retention: time.Hour, IdempotencyTTL: 24 * time.Hour})
	return q, NewMessage{TenantID: "acme", Route: "tenant", MessageID: "<x@acme.example>",
		Payload: []byte(strings.Repeat("x", 1024)), RequestHash: "h"}
}
