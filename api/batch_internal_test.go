package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/outbound-mail/outbound/internal/delivery"
	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/queue"
)

// panickingMessages fails the way a bug would, on one tenant's messages.
type panickingMessages struct{ MessageService }

func (panickingMessages) Accept(_ context.Context, req *message.Request, _ []byte, _ string) (delivery.Accepted, error) {
	if req.TenantID == "boom" {
		panic("a bug met by one message")
	}
	return delivery.Accepted{ID: "01TEST-0", TenantID: req.TenantID, Route: "default", Status: queue.StatusQueued}, nil
}

// TestBatchMessagePanicStaysWithIt: a batch's messages are accepted on
// goroutines of their own, where the Recover middleware cannot reach, so
// a panic must become that message's 500 and leave the process running.
func TestBatchMessagePanicStaysWithIt(t *testing.T) {
	s := &Server{Deps: Deps{Messages: panickingMessages{}}, log: slog.New(slog.DiscardHandler)}
	c := jsonContext(`{"messages": [{"tenant_id": "boom"}, {"tenant_id": "acme"}]}`)
	if err := s.postBatch(c); err != nil {
		t.Fatal(err)
	}
	var out struct{ Results []batchResult }
	if err := json.Unmarshal(c.Response().Writer.(*httptest.ResponseRecorder).Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 2 || out.Results[0].Status != 500 || out.Results[0].Problem.Code != "internal_error" ||
		out.Results[1].Status != 202 {
		t.Fatalf("results %+v", out.Results)
	}
}
