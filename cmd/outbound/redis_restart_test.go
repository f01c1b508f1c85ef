package main

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// TestRedisRestartLosesNothing stops Redis (AOF on) while requests and
// deliveries are under way: the API answers 503 quickly while it is down,
// everything accepted before is delivered after the restart, and the
// service recovers without a restart of its own.
func TestRedisRestartLosesNothing(t *testing.T) {
	relay, relayEnv := stallingRelay(t, 2*time.Millisecond)
	redis := redistest.Start(t, redistest.WithAOF())
	env, admin, send := serviceEnv(t, redis.URL(), append(relayEnv,
		"OUTBOUND_RATE_PER_MINUTE=100000", "OUTBOUND_RATE_PER_DAY=1000000",
		"OUTBOUND_WORKERS=4", "OUTBOUND_CLAIM_AFTER=1s")...)
	svc := startService(t, env, admin, send)

	var (
		mu          sync.Mutex
		accepted    []string
		unavailable int
		slowest503  time.Duration
		other       []string
		stop        atomic.Bool
		n           atomic.Int64
	)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				i := n.Add(1)
				start := time.Now()
				status, body := svc.call(t, "POST", "/v1/messages", send, map[string]any{
					"tenant_id": "tenant-" + strconv.FormatInt(i%7, 10),
					"to":        []map[string]string{{"email": "client@example.com"}},
					"subject":   "message " + strconv.FormatInt(i, 10), "text": "body"})
				took := time.Since(start)
				mu.Lock()
				switch status {
				case http.StatusAccepted:
					accepted = append(accepted, body["id"].(string))
				case http.StatusServiceUnavailable:
					unavailable++
					slowest503 = max(slowest503, took)
				default:
					other = append(other, strconv.Itoa(status))
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(time.Second)
	redis.Stop(t)
	time.Sleep(2 * time.Second)
	redis.Restart(t)
	waitHTTP(t, svc.url+"/readyz", svc.process)
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()

	if len(other) > 0 {
		t.Errorf("answers other than 202 and 503: %v", other)
	}
	if unavailable == 0 {
		t.Error("no request saw the outage")
	}
	// A bound, not a performance figure: nothing may hang while Redis is down.
	if slowest503 > 5*time.Second {
		t.Errorf("slowest 503 took %v", slowest503)
	}
	for _, id := range accepted {
		svc.waitStatus(t, id, "sent", 30*time.Second)
	}
	t.Logf("%d accepted (all delivered), %d answered 503 while Redis was down, slowest 503 %v, %d messages at the sink",
		len(accepted), unavailable, slowest503.Round(time.Millisecond), len(relay.Messages()))
}
