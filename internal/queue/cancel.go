package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/outage"
)

// ErrNotCancellable means the message is being sent or is already done.
// Cancel answers it as a *NotCancellableError, which says the status.
var ErrNotCancellable = errors.New("queue: message is being sent or is done")

// NotCancellableError is Cancel's refusal: the message's status is past
// cancelling. It matches ErrNotCancellable.
type NotCancellableError struct{ Status Status }

func (e *NotCancellableError) Error() string {
	return ErrNotCancellable.Error() + " (status " + string(e.Status) + ")"
}

// Is makes errors.Is(err, ErrNotCancellable) hold.
func (e *NotCancellableError) Is(target error) bool { return target == ErrNotCancellable }

// cancelScript cancels a message that has not started sending: its
// record says cancelled and it leaves the retry set; a stream entry left
// behind is skipped by Begin; the record is kept for the retention from
// now. KEYS: record, retry. ARGV: id, now ms, retention ms.
var cancelScript = redis.NewScript(luaNames + `
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {0, ''} end
if st == STATUS.scheduled or st == STATUS.queued or st == STATUS.deferred then
  redis.call('HSET', KEYS[1], 'status', STATUS.cancelled, 'updated_at', ARGV[2])
  redis.call('HDEL', KEYS[1], 'payload', 'next_attempt_at')
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, STATUS.cancelled}
end
return {2, st}
`)

// Cancel takes back a scheduled, queued or deferred message.
func (q *Queue) Cancel(ctx context.Context, id string) (err error) {
	defer outage.Mark(&err)
	p, ok := partitionOf(id)
	if !ok || p >= q.opts.Partitions {
		return ErrNotFound
	}
	res, err := cancelScript.Run(ctx, q.rdb, []string{recordKey(p, id), retryKey(p)}, id, ms(q.now()), q.opts.Retention.Milliseconds()).Slice()
	if err != nil {
		return fmt.Errorf("queue: cancel %s: %w", id, err)
	}
	switch res[0].(int64) {
	case 0:
		return ErrNotFound
	case 2:
		st, _ := res[1].(string)
		return &NotCancellableError{Status: Status(st)}
	}
	return nil
}
