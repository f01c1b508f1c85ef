package delivery

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/retry"
)

// Codes that start the error of a message failed by Outbound itself
// rather than by its server.
const (
	// CodeInternalError: delivering the message panicked.
	CodeInternalError = "internal_error"
	// CodeDeliveryAbandoned: the message was begun more than maxBegins
	// times without an outcome being recorded.
	CodeDeliveryAbandoned = "delivery_abandoned"
)

// maxBegins is how many times a message may be begun without an outcome
// being recorded. Each extra begin means the worker that took it before
// stopped (crashed, was killed, lost Redis for good) before finishing;
// past this the message is failed rather than tried again, so a message
// that crashes whatever delivers it cannot take every replica down in turn.
const maxBegins = 5

// deliverGuarded is deliver with a panic turned into a failed outcome: a
// panic would end the process, the entry would be reclaimed by the next
// replica, and it would end that one too.
func (s *Service) deliverGuarded(ctx context.Context, st queue.Started, inTurn bool) (out queue.Outcome) {
	rec := st.Record
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		// The stack shows where; the value only when it is the runtime's
		// own (fixed texts), since a library's panic value could hold
		// anything, credentials or the message included.
		s.log.Error("delivery panicked; the message is failed", "message_id", rec.ID, "tenant_id", rec.TenantID,
			"panic", panicText(v), "stack", string(debug.Stack()))
		out = queue.Outcome{Status: queue.StatusFailed, Route: rec.Route, Rejected: rec.Rejected,
			Attempts: append(rec.Attempts[:len(rec.Attempts):len(rec.Attempts)],
				queue.Attempt{At: time.Now().UTC(), Route: rec.Route, Error: CodeInternalError}),
			Error: CodeInternalError + ": Outbound failed unexpectedly while delivering this message; the operator's log has the details"}
	}()
	return s.deliver(ctx, st, inTurn)
}

// panicText is what may be logged of a panic's value.
func panicText(v any) string {
	if e, ok := v.(runtime.Error); ok {
		return e.Error()
	}
	return fmt.Sprintf("a value of type %T", v)
}

// abandoned is the outcome of a message begun too often (see maxBegins):
// failed, without a send.
func (s *Service) abandoned(st queue.Started) queue.Outcome {
	rec := st.Record
	s.log.Error("message begun too often without an outcome; failed without sending", "message_id", rec.ID,
		"tenant_id", rec.TenantID, "begun", st.Begun)
	return queue.Outcome{Status: queue.StatusFailed, Route: rec.Route, Attempts: rec.Attempts, Rejected: rec.Rejected,
		Error: fmt.Sprintf("%s: begun %d times without an outcome; each worker that took it stopped before finishing",
			CodeDeliveryAbandoned, st.Begun)}
}

// finish records the outcome, retrying while Redis does not take it: the
// message may have been sent, and an entry left pending is reclaimed and
// sent again. The entry is still in flight meanwhile, so its claim stays
// fresh (touchLoop) and this replica's reclaimer leaves it alone
// (dispatch). Past finishPatience, or when the service is cut short, the
// outcome is remembered instead, so that when this replica takes the
// entry back it records the outcome without sending. It reports whether
// the outcome was recorded.
func (s *Service) finish(ctx context.Context, st queue.Started, out queue.Outcome) bool {
	deadline := time.Now().Add(s.finishPatience)
	for try := 1; ; try++ {
		store, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := s.queue.Finish(store, st.Entry, st.Record.TenantID, out)
		cancel()
		if err == nil {
			if try > 1 {
				s.log.Info("recorded delivery outcome after retrying", "message_id", st.ID, "status", out.Status, "tries", try)
			}
			return true
		}
		wait := min(retry.Delay(100*time.Millisecond, try), time.Second)
		if time.Now().Add(wait).After(deadline) || !retry.Sleep(ctx, wait) {
			s.log.Error("record delivery outcome; kept in memory for when the entry comes back", "message_id", st.ID,
				"status", out.Status, "tries", try, "error", err)
			s.unrecorded.put(st.Entry, out)
			return false
		}
		if try == 1 {
			s.log.Warn("record delivery outcome; retrying", "message_id", st.ID, "status", out.Status, "error", err)
		}
	}
}

// maxUnrecorded bounds the outcomes kept in memory: a few hundred bytes
// each, and only those of messages finished while Redis was unreachable.
const maxUnrecorded = 10000

// unrecorded holds outcomes Redis did not take, by entry (a reclaimed
// entry keeps its stream id; a retry is a new entry and is delivered
// afresh), until the entry comes back to this replica.
type unrecorded struct {
	mu  sync.Mutex
	out map[queue.Entry]queue.Outcome
}

func newUnrecorded() *unrecorded { return &unrecorded{out: map[queue.Entry]queue.Outcome{}} }

func (u *unrecorded) put(e queue.Entry, out queue.Outcome) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.out) < maxUnrecorded {
		u.out[e] = out
	}
}

// take returns and forgets the outcome kept for e.
func (u *unrecorded) take(e queue.Entry) (queue.Outcome, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	out, ok := u.out[e]
	delete(u.out, e)
	return out, ok
}
