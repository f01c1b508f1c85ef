package webhook

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/egress"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
)

// Receivers often carry a token in the URL's query: a failed delivery's
// error names the URL in the log and the delivery list without it.
func TestDeliveryErrorsHideTheQuery(t *testing.T) {
	// A port nothing listens on: the POST fails to connect.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	rdb := redistest.Start(t).Client(t)
	key, _ := seal.ParseKey(seal.NewKey())
	sealer, _ := seal.New(key)
	store := NewStore(rdb, sealer)
	ctx := context.Background()
	const token = "tok_s3cr3t"
	h, _, err := Build("ops", Input{URL: "https://" + addr + "/hook/path?token=" + token + "#frag", Events: []string{"message.sent"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, h); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	for i, guard := range []*egress.Guard{{AllowPrivate: true}, {}} { // connection refused, then egress refused
		d := NewDispatcher(Options{Consumer: "t"}, store, nil, rdb, guard.HTTPClient(nil, time.Second),
			slog.New(slog.NewJSONHandler(&logs, nil)))
		if err := d.handleEvents(ctx, 0, []queue.Event{{StreamID: strconv.Itoa(i+1) + "-0", Type: "message.sent", MessageID: "m1", TenantID: "acme"}}); err != nil {
			t.Fatal(err)
		}
		ids, _ := rdb.ZRange(ctx, dueKey, 0, -1).Result()
		for _, id := range ids {
			d.deliver(ctx, id)
		}
	}
	ds, _, err := store.Deliveries(ctx, "ops", "", 10)
	if err != nil || len(ds) < 2 {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
	for _, dl := range ds {
		if dl.Delivered || !strings.Contains(dl.Error, "https://"+addr+"/hook/path") {
			t.Errorf("delivery error %q does not name the URL without its query", dl.Error)
		}
		if strings.Contains(dl.Error, token) || strings.Contains(dl.Error, "frag") {
			t.Errorf("delivery error holds the query: %q", dl.Error)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"webhook delivery"`) {
		t.Fatalf("no delivery logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the log holds the URL's query: %s", logs.String())
	}
}
