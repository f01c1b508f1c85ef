package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/validation"
)

// maxBatch is the most messages one POST /v1/messages/batch carries.
const maxBatch = 100

type batchInput struct {
	// Each message stays raw until it is decoded on its own, so one bad
	// message is refused alone and the others are stored as they came.
	Messages []jsontext.Value `json:"messages"`
}

// batchResult is what POST /v1/messages would have answered for one
// message: its status code, and the accepted message or the problem.
type batchResult struct {
	Status  int           `json:"status"`
	Message *acceptedView `json:"message,omitempty"`
	Problem *Problem      `json:"problem,omitempty"`
}

// postBatch queues up to maxBatch messages in one request, for senders
// with many at once (a month's invoices). Each message is accepted or
// refused on its own, exactly as POST /v1/messages would; the answer is
// 200 with a result per message, in the order given. The messages are
// accepted concurrently, so those arriving together share the queue's
// round trips to Redis.
func (s *Server) postBatch(c echo.Context) error {
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	var in batchInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if len(in.Messages) == 0 || len(in.Messages) > maxBatch {
		var verr validation.Error
		verr.Add("messages", "batch_size", "1 to "+strconv.Itoa(maxBatch)+" messages")
		return &verr
	}
	ctx, caller := c.Request().Context(), apiKey(c)
	results := make([]batchResult, len(in.Messages))
	var wg sync.WaitGroup
	for i, raw := range in.Messages {
		itemKey := ""
		if key != "" {
			// A retried batch under the same key replays each message.
			itemKey = key + "#" + strconv.Itoa(i)
		}
		wg.Go(func() { results[i] = s.acceptOne(ctx, caller, raw, itemKey) })
	}
	wg.Wait()
	return c.JSON(http.StatusOK, map[string][]batchResult{"results": results})
}

// acceptOne decodes and queues one message of a batch. It runs on its
// own goroutine, out of reach of the Recover middleware, so it recovers
// from a panic itself: a bug met by one message must not stop the process.
func (s *Server) acceptOne(ctx context.Context, caller apikey.Key, raw jsontext.Value, key string) (res batchResult) {
	refused := func(err error) batchResult {
		p := toProblem(err)
		if p.Status >= 500 && p.Code != codeUnavailable.String() {
			s.log.ErrorContext(ctx, "batch message failed", "error", err)
		}
		return batchResult{Status: p.Status, Problem: p}
	}
	defer func() {
		if v := recover(); v != nil {
			res = refused(fmt.Errorf("panic: %v", v))
		}
	}()
	var req message.Request
	if err := decodeStrict(raw, &req); err != nil {
		return refused(err)
	}
	if !caller.AllowsTenant(req.TenantID) {
		return refused(problem(codeForbidden, "this key is bound to another tenant"))
	}
	a, err := s.Messages.Accept(ctx, &req, raw, key)
	if err != nil {
		return refused(err)
	}
	status, view := acceptedAnswer(a)
	return batchResult{Status: status, Message: view}
}
