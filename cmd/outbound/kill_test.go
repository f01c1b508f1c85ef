package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// TestWorkerKilledMidBatch sends a batch, kills the delivering process with
// SIGKILL part-way through, and lets a second process finish: every
// message is delivered, none is lost, and the duplicates (at-least-once)
// are counted.
func TestWorkerKilledMidBatch(t *testing.T) {
	const total = 300
	relay, relayEnv := stallingRelay(t, 10*time.Millisecond)

	redis := redistest.Start(t)
	env, admin, send := serviceEnv(t, redis.URL(), append(relayEnv,
		"OUTBOUND_WORKERS=4",
		"OUTBOUND_CLAIM_AFTER=1s")...)
	first := startService(t, env, admin, send)

	ids := make([]string, total)
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < total; i += 8 {
				status, body := first.call(t, "POST", "/v1/messages", send, map[string]any{
					"tenant_id": "tenant-" + strconv.Itoa(i%10),
					"to":        []map[string]string{{"email": "client@example.com"}},
					"subject":   "message " + strconv.Itoa(i), "text": "body",
				})
				if status != http.StatusAccepted {
					errs <- fmt.Errorf("POST %d: %d %v", i, status, body)
					return
				}
				ids[i] = body["id"].(string)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	relay.WaitMessages(t, total/5, 20*time.Second)
	first.stop(syscall.SIGKILL, time.Second)
	atKill := len(relay.Messages())
	if atKill >= total {
		t.Fatalf("all %d delivered before the kill; slow the sink down", atKill)
	}

	second := startService(t, env, admin, send)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if unique(t, relay.Messages()) == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages delivered 60s after the kill", unique(t, relay.Messages()), total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, id := range ids {
		second.waitStatus(t, id, "sent", 10*time.Second)
	}
	received := len(relay.Messages())
	t.Logf("%d messages, killed after %d were delivered; delivered %d distinct, %d duplicates (at-least-once)",
		total, atKill, total, received-total)
	// A duplicate needs a message sent but not yet acknowledged at the
	// kill: at most one per worker in flight.
	if received-total > 4 {
		t.Errorf("%d duplicates, more than the 4 workers that could have been mid-send", received-total)
	}
}

// unique counts distinct subjects among received messages.
func unique(t *testing.T, msgs []smtptest.Message) int {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range msgs {
		r, err := mail.CreateReader(bytesReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := r.Header.Subject()
		seen[s] = true
	}
	return len(seen)
}

// TestGracefulShutdown stops a process with SIGTERM while a send is slow:
// the send in flight finishes, the process exits on its own within the
// grace period, and a second process delivers what was still queued.
func TestGracefulShutdown(t *testing.T) {
	const total = 20
	relay, relayEnv := stallingRelay(t, 300*time.Millisecond)
	redis := redistest.Start(t)
	// A second process must not need to reclaim anything: a long claim.
	env, admin, send := serviceEnv(t, redis.URL(), append(relayEnv, "OUTBOUND_WORKERS=2", "OUTBOUND_CLAIM_AFTER=30s")...)
	first := startService(t, env, admin, send)
	var ids []string
	for i := range total {
		status, body := first.call(t, "POST", "/v1/messages", send, map[string]any{
			"tenant_id": "acme", "to": []map[string]string{{"email": "client@example.com"}},
			"subject": "message " + strconv.Itoa(i), "text": "body"})
		if status != http.StatusAccepted {
			t.Fatalf("POST: %d %v", status, body)
		}
		ids = append(ids, body["id"].(string))
	}
	relay.WaitMessages(t, 1, 10*time.Second)
	time.Sleep(100 * time.Millisecond) // the next sends are now in their 300ms DATA stall
	start := time.Now()
	first.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-first.done:
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit within 10s of SIGTERM")
	}
	if code := first.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	t.Logf("exited %v after SIGTERM with %d of %d delivered", time.Since(start).Round(time.Millisecond), len(relay.Messages()), total)

	second := startService(t, env, admin, send)
	for _, id := range ids {
		second.waitStatus(t, id, "sent", 20*time.Second)
	}
	if n := len(relay.Messages()); n != total {
		t.Errorf("relay received %d messages for %d: a send in flight at SIGTERM was cut and repeated", n, total)
	}
}

// TestServeOnRedisCluster runs the binary with OUTBOUND_REDIS_CLUSTER=true
// against a real three-master cluster.
func TestServeOnRedisCluster(t *testing.T) {
	relay, relayEnv := stallingRelay(t, 0)
	cluster := redistest.StartCluster(t, 3)
	env, admin, send := serviceEnv(t, cluster.URL(), append(relayEnv, "OUTBOUND_REDIS_CLUSTER=true", "OUTBOUND_QUEUE_PARTITIONS=6")...)
	svc := startService(t, env, admin, send)
	var ids []string
	for i := range 20 {
		status, body := svc.call(t, "POST", "/v1/messages", send, map[string]any{
			"tenant_id": "tenant-" + strconv.Itoa(i%4), "to": []map[string]string{{"email": "client@example.com"}},
			"subject": "message " + strconv.Itoa(i), "text": "body"})
		if status != http.StatusAccepted {
			t.Fatalf("POST %d: %d %v", i, status, body)
		}
		ids = append(ids, body["id"].(string))
	}
	for _, id := range ids {
		svc.waitStatus(t, id, "sent", 15*time.Second)
	}
	if n := unique(t, relay.Messages()); n != 20 {
		t.Fatalf("relay received %d distinct messages, want 20", n)
	}
}

// TestRepeatedKillsWithAnotherProcessRunning kills one of two delivering
// processes with SIGKILL three times during a run spread over tenants;
// the survivor and the restarted process deliver everything.
func TestRepeatedKillsWithAnotherProcessRunning(t *testing.T) {
	total := 1000
	if os.Getenv("OUTBOUND_TEST_LONG") == "1" {
		total = 10000
	}
	relay, relayEnv := stallingRelay(t, 3*time.Millisecond)
	redis := redistest.Start(t)
	env, admin, send := serviceEnv(t, redis.URL(), append(relayEnv,
		"OUTBOUND_RATE_PER_MINUTE=100000", "OUTBOUND_RATE_PER_DAY=1000000",
		"OUTBOUND_WORKERS=4", "OUTBOUND_CLAIM_AFTER=1s")...)
	victim := startService(t, env, admin, send)
	survivor := startService(t, env, admin, send)

	ids := make([]string, total)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < total; i += 8 {
				status, body := survivor.call(t, "POST", "/v1/messages", send, map[string]any{
					"tenant_id": "tenant-" + strconv.Itoa(i%25),
					"to":        []map[string]string{{"email": "client@example.com"}},
					"subject":   "message " + strconv.Itoa(i), "text": "body"})
				if status != http.StatusAccepted {
					t.Errorf("POST %d: %d %v", i, status, body)
					return
				}
				ids[i] = body["id"].(string)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	kills := 0
	for round := 1; round <= 3; round++ {
		relay.WaitMessages(t, total*round/5, 60*time.Second)
		victim.stop(syscall.SIGKILL, time.Second)
		kills++
		if len(relay.Messages()) >= total {
			break
		}
		victim = startService(t, env, admin, send)
	}
	deadline := time.Now().Add(90 * time.Second)
	for unique(t, relay.Messages()) < total {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d delivered", unique(t, relay.Messages()), total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, id := range ids {
		survivor.waitStatus(t, id, "sent", 10*time.Second)
	}
	t.Logf("%d messages, %d SIGKILLs of one of two processes: all delivered, %d duplicates", total, kills, len(relay.Messages())-total)
}
