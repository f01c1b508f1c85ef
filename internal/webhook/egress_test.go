package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/egress"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
)

// A webhook URL is user input: without OUTBOUND_ALLOW_PRIVATE_NETWORKS a
// receiver on a private address is never contacted.
func TestWebhookEgressGuard(t *testing.T) {
	var hits atomic.Int32
	rcv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer rcv.Close()
	rdb := redistest.Start(t).Client(t)
	key, _ := seal.ParseKey(seal.NewKey())
	sealer, _ := seal.New(key)
	store := NewStore(rdb, sealer)
	ctx := context.Background()
	h, _, err := Build("ops", Input{URL: rcv.URL, Events: []string{"message.sent"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, h); err != nil {
		t.Fatal(err)
	}
	d := NewDispatcher(Options{Consumer: "t"}, store, nil, rdb, (&egress.Guard{}).HTTPClient(nil, time.Second),
		slog.New(slog.DiscardHandler))
	events := []queue.Event{{StreamID: "1-0", Type: "message.sent", MessageID: "m1", TenantID: "acme"}}
	if err := d.handleEvents(ctx, 0, events); err != nil {
		t.Fatal(err)
	}
	ids, _ := rdb.ZRange(ctx, dueKey, 0, -1).Result()
	if len(ids) != 1 {
		t.Fatalf("jobs: %v", ids)
	}
	d.deliver(ctx, ids[0])
	ds, _, _ := store.Deliveries(ctx, "ops", "", 10)
	if hits.Load() != 0 || len(ds) != 1 || ds[0].Delivered || !strings.Contains(ds[0].Error, "not allowed") {
		t.Fatalf("hits %d, deliveries %+v", hits.Load(), ds)
	}
}
