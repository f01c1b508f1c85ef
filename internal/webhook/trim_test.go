package webhook

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/logtest"
	"github.com/outbound-mail/outbound/internal/metrics"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/retry"
)

// stalled is the queue's event streams as a dispatcher sees them when it
// cannot keep up: it never gets to read an event.
type stalled struct{ *queue.Queue }

func (stalled) ReadEvents(ctx context.Context, _ int, _ string, _ int, block time.Duration) ([]queue.Event, error) {
	retry.Sleep(ctx, block)
	return nil, nil
}

func (stalled) ReclaimEvents(context.Context, int, string, time.Duration, int) ([]queue.Event, error) {
	return nil, nil
}

// A dispatcher that cannot keep up leaves the events it has not had in
// the stream up to EventsMax; past it the oldest are dropped, counted in
// outbound_events_dropped_total and logged.
func TestStalledDispatcherCountsDroppedEvents(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	q := queue.New(rdb, queue.Options{Partitions: 1, Retention: time.Hour})
	if err := q.EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	finishSent := func(n int) {
		t.Helper()
		for range n {
			if _, err := q.Enqueue(ctx, queue.NewMessage{TenantID: "acme", Route: "tenant", Payload: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			es, err := q.Read(ctx, 0, "w", 1, 0)
			if err != nil || len(es) != 1 {
				t.Fatalf("read %d, %v", len(es), err)
			}
			if _, err := q.Begin(ctx, es); err != nil {
				t.Fatal(err)
			}
			if err := q.Finish(ctx, es[0], "acme", queue.Outcome{Status: queue.StatusSent, Route: "tenant"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := metrics.New(false)
	logs := &logtest.Buffer{}
	d := NewDispatcher(Options{Consumer: "t", EventsMax: 20, Dropped: m}, NewStore(rdb, nil), stalled{q}, rdb, nil,
		slog.New(slog.NewJSONHandler(logs, nil)))
	d.trimEvery = 20 * time.Millisecond

	finishSent(15) // under the cap: all kept
	d.Start()
	defer d.Shutdown(ctx)
	time.Sleep(100 * time.Millisecond)
	if n := rdb.XLen(ctx, "outbound:{q0}:events").Val(); n != 15 {
		t.Fatalf("%d events left of 15 unread under the cap", n)
	}
	if dropped := scrape(t, m, "outbound_events_dropped_total"); dropped != "0" {
		t.Fatalf("dropped %s under the cap", dropped)
	}

	finishSent(15) // 30: ten past the cap
	deadline := time.Now().Add(5 * time.Second)
	for scrape(t, m, "outbound_events_dropped_total") != "10" {
		if time.Now().After(deadline) {
			t.Fatalf("outbound_events_dropped_total %s, want 10", scrape(t, m, "outbound_events_dropped_total"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := rdb.XLen(ctx, "outbound:{q0}:events").Val(); n != 20 {
		t.Fatalf("%d events left, want the cap's 20", n)
	}
	// The trimmer may run while the second batch is still being finished,
	// so the ten can be logged in more than one warning.
	if n := droppedLogged(t, logs.String()); n != 10 {
		t.Fatalf("warnings count %d dropped, want 10: %s", n, logs.String())
	}
}

// droppedLogged sums the counts of the drop warnings in a JSON log.
func droppedLogged(t *testing.T, log string) int {
	t.Helper()
	total := 0
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var entry struct {
			Msg   string `json:"msg"`
			Count int    `json:"count"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if strings.HasPrefix(entry.Msg, "webhook events dropped unread") {
			total += entry.Count
		}
	}
	return total
}

// scrape is one sample's value as /metrics shows it.
func scrape(t *testing.T, m *metrics.Metrics, name string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("%s not in /metrics", name)
	return ""
}
