package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configure a Queue.
type Options struct {
	Partitions     int           // stream partitions; only ever raise it
	Retention      time.Duration // how long records live
	IdempotencyTTL time.Duration // how long an Idempotency-Key is remembered
	// WaitReplicas, when above zero, makes Enqueue wait (Redis WAIT, at
	// most WaitTimeout) until that many replicas hold the new message.
	WaitReplicas int
	WaitTimeout  time.Duration
}

// Queue is the durable queue and status store.
type Queue struct {
	rdb  redis.UniversalClient
	opts Options
	now  func() time.Time
}

// New returns a queue on rdb.
func New(rdb redis.UniversalClient, opts Options) *Queue {
	if opts.Partitions < 1 {
		opts.Partitions = 1
	}
	return &Queue{rdb: rdb, opts: opts, now: time.Now}
}

// Partitions is the number of stream partitions.
func (q *Queue) Partitions() int { return q.opts.Partitions }

// Keys of partition p all share the hash tag {q<p>}.
func tag(p int) string                      { return "outbound:{q" + strconv.Itoa(p) + "}:" }
func streamKey(p int) string                { return tag(p) + "stream" }
func retryKey(p int) string                 { return tag(p) + "retry" }
func recordKey(p int, id string) string     { return tag(p) + "msg:" + id }
func heldKey(p int, tenantID string) string { return tag(p) + "held:" + tenantID }
func eventsKey(p int) string                { return tag(p) + "events" }
func idemKey(p int, tenantID, k string) string {
	sum := sha256.Sum256([]byte(k))
	return tag(p) + "idem:" + tenantID + ":" + hex.EncodeToString(sum[:16])
}

// group is the consumer group every worker joins.
const group = "outbound"

// NewMessage is a validated message ready to queue.
type NewMessage struct {
	TenantID  string
	Route     string
	MessageID string
	Payload   []byte // the request JSON
	// IdempotencyKey, when set, makes a repeat of the same request return
	// the first message instead of queueing another. RequestHash tells a
	// repeat from a different request under the same key.
	IdempotencyKey string
	RequestHash    string
	// SendAt, when in the future, holds the message until then.
	SendAt time.Time
	// Meta is the request's tags and metadata as JSON, carried into the
	// events webhooks receive.
	Meta []byte
}

// Accepted is the outcome of Enqueue.
type Accepted struct {
	ID string
	// Replayed is true when the idempotency key named an earlier message;
	// nothing new was queued.
	Replayed bool
	// Status is queued, or scheduled for a message held until its send time.
	Status Status
	// Unreplicated is set when WaitReplicas replicas did not confirm the
	// write in time. The message is queued all the same: refusing it now
	// would make the caller send it again.
	Unreplicated bool
}

// enqueueScript writes the record and queues it in one step, after
// checking the idempotency key: into the stream, or, for a message
// scheduled for later, into the retry set due at its send time.
// KEYS: stream, record, retry, [idempotency key].
// ARGV: id, request hash, idempotency TTL ms, retention ms, send at ms (0:
// now), field pairs...
var enqueueScript = redis.NewScript(`
if KEYS[4] then
  local prev = redis.call('GET', KEYS[4])
  if prev then
    local sep = string.find(prev, ' ', 1, true)
    local id = string.sub(prev, 1, sep - 1)
    if string.sub(prev, sep + 1) ~= ARGV[2] then return {-1, id} end
    return {0, id}
  end
  redis.call('SET', KEYS[4], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
end
redis.call('HSET', KEYS[2], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if tonumber(ARGV[5]) > 0 then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
else
  redis.call('XADD', KEYS[1], '*', 'id', ARGV[1])
end
return {1, ARGV[1]}
`)

// Enqueue stores m and queues it, atomically: when it returns without
// error the message is in Redis and will be delivered.
func (q *Queue) Enqueue(ctx context.Context, m NewMessage) (Accepted, error) {
	p := rand.IntN(q.opts.Partitions)
	if m.IdempotencyKey != "" {
		p = q.idemPartition(m.TenantID, m.IdempotencyKey)
	}
	id := newID(p)
	now := ms(q.now())
	keys := []string{streamKey(p), recordKey(p, id), retryKey(p)}
	if m.IdempotencyKey != "" {
		keys = append(keys, idemKey(p, m.TenantID, m.IdempotencyKey))
	}
	status, sendAt := StatusQueued, int64(0)
	if !m.SendAt.IsZero() && m.SendAt.After(q.now()) {
		status, sendAt = StatusScheduled, m.SendAt.UnixMilli()
	}
	args := []any{id, m.RequestHash, q.opts.IdempotencyTTL.Milliseconds(), q.opts.Retention.Milliseconds(), sendAt,
		"tenant_id", m.TenantID,
		"status", string(status),
		"meta", m.Meta,
		"send_at", sendAt,
		"route", m.Route,
		"message_id", m.MessageID,
		"created_at", now,
		"updated_at", now,
		"payload", m.Payload,
	}
	res, err := q.runEnqueue(ctx, keys, args)
	var replicationErr error
	if errors.Is(err, ErrNotReplicated) {
		replicationErr, err = err, nil
	}
	if err != nil {
		return Accepted{}, fmt.Errorf("queue: enqueue: %w", err)
	}
	switch res[0].(int64) {
	case -1:
		return Accepted{ID: res[1].(string)}, ErrIdempotencyKeyReused
	case 0:
		return Accepted{ID: res[1].(string), Replayed: true}, nil
	}
	return Accepted{ID: id, Status: status, Unreplicated: replicationErr != nil}, nil
}

// idemPartition is the partition of an idempotency key: the same key
// always lands on the same partition, so the check and the write are one
// script on one shard.
func (q *Queue) idemPartition(tenantID, key string) int {
	h := fnv.New32a()
	h.Write([]byte(tenantID + "\x00" + key))
	return int(h.Sum32() % uint32(q.opts.Partitions))
}

// Replay reports whether an idempotency key already names a message:
// found is true for a repeat of the same request, and a different request
// under the key is ErrIdempotencyKeyReused. Enqueue checks again
// atomically; this early look lets a repeat skip work that a new message
// needs, such as spending rate-limit budget.
func (q *Queue) Replay(ctx context.Context, tenantID, key, requestHash string) (Accepted, bool, error) {
	p := q.idemPartition(tenantID, key)
	v, err := q.rdb.Get(ctx, idemKey(p, tenantID, key)).Result()
	if errors.Is(err, redis.Nil) {
		return Accepted{}, false, nil
	}
	if err != nil {
		return Accepted{}, false, fmt.Errorf("queue: idempotency key: %w", err)
	}
	id, hash, _ := strings.Cut(v, " ")
	if hash != requestHash {
		return Accepted{ID: id}, false, ErrIdempotencyKeyReused
	}
	return Accepted{ID: id, Replayed: true}, true, nil
}

// ErrNotReplicated means the message is stored on the primary but fewer
// replicas than OUTBOUND_REDIS_WAIT_REPLICAS confirmed it in time. It is
// queued and will be delivered; only its durability is less than asked.
var ErrNotReplicated = errors.New("queue: fewer replicas than required confirmed the write")

// runEnqueue runs the enqueue script, followed by WAIT on the same
// connection when replicas must confirm the write.
func (q *Queue) runEnqueue(ctx context.Context, keys []string, args []any) ([]any, error) {
	if q.opts.WaitReplicas <= 0 {
		return enqueueScript.Run(ctx, q.rdb, keys, args...).Slice()
	}
	timeout := q.opts.WaitTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	pipe := q.rdb.Pipeline()
	eval := enqueueScript.Eval(ctx, pipe, keys, args...)
	wait := redis.NewIntCmd(ctx, "wait", q.opts.WaitReplicas, timeout.Milliseconds())
	_ = pipe.Process(ctx, wait)
	if _, err := pipe.Exec(ctx); err != nil && eval.Err() != nil {
		return nil, eval.Err()
	}
	res, err := eval.Slice()
	if err != nil {
		return nil, err
	}
	if n, err := wait.Result(); err != nil || n < int64(q.opts.WaitReplicas) {
		return res, ErrNotReplicated
	}
	return res, nil
}

// statusFields are what Get reads: everything but the payload, which can be
// megabytes.
var statusFields = []string{"tenant_id", "status", "route", "message_id", "created_at", "updated_at",
	"sent_at", "next_attempt_at", "attempts", "rejected", "suppressed", "error", "send_at"}

// Get returns a message's status record, without its payload.
func (q *Queue) Get(ctx context.Context, id string) (Record, error) {
	p, ok := partitionOf(id)
	if !ok || p >= q.opts.Partitions {
		return Record{}, ErrNotFound
	}
	vals, err := q.rdb.HMGet(ctx, recordKey(p, id), statusFields...).Result()
	if err != nil {
		return Record{}, fmt.Errorf("queue: get %s: %w", id, err)
	}
	h := make(map[string]string, len(statusFields))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			h[statusFields[i]] = s
		}
	}
	if h["status"] == "" {
		return Record{}, ErrNotFound
	}
	return decodeRecord(id, h)
}

// Ping reports whether Redis answers.
func (q *Queue) Ping(ctx context.Context) error {
	if err := q.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("queue: ping: %w", err)
	}
	return nil
}

// isNoGroup recognises the error of a stream whose group vanished (Redis
// restarted without persistence, or the stream was deleted).
func isNoGroup(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && len(re.Error()) >= 7 && re.Error()[:7] == "NOGROUP"
}

// OldestAge is how long the oldest entry of partition p has waited in the
// stream (zero when it is empty). Entries leave the stream when their
// delivery ends, so the first one is the oldest still waiting or in flight.
func (q *Queue) OldestAge(ctx context.Context, p int) (time.Duration, error) {
	msgs, err := q.rdb.XRangeN(ctx, streamKey(p), "-", "+", 1).Result()
	if err != nil {
		return 0, fmt.Errorf("queue: oldest of partition %d: %w", p, err)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	msStr, _, _ := strings.Cut(msgs[0].ID, "-")
	ms, err := strconv.ParseInt(msStr, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("queue: oldest of partition %d: id %q: %w", p, msgs[0].ID, err)
	}
	return max(0, q.now().Sub(time.UnixMilli(ms))), nil
}
