package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/coalesce"
	"github.com/outbound-mail/outbound/internal/outage"
	"github.com/outbound-mail/outbound/internal/ratelimit"
)

// Options configure a Queue.
type Options struct {
	Partitions     int           // stream partitions; only ever raise it
	Retention      time.Duration // how long a record is kept after its final outcome (see recordTTL)
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
	// accepts and finishes write, per partition, the messages that arrive
	// together in one script call.
	accepts, finishes []*coalesce.Group[invocation, any]
	missing           atomic.Uint64 // messages failed as record_missing
}

// batchMax bounds the invocations of one script call: large enough to
// serve every worker and HTTP request of a busy replica at once, small
// enough that one call does not hold Redis for long.
const batchMax = 128

// batchBytes bounds the bytes of one script call too (a lone message
// larger than this still goes, alone): batchMax large messages in one call
// hold Redis past the client's read timeout, and every caller then gets an
// error for messages that were in fact stored. What grouping saves per
// message is small next to what copying a large one costs, so a few MiB
// keeps the gain for small messages and a short call for large ones
// (docs/measurements.md, "How many bytes one batch carries").
const batchBytes = 4 << 20

// New returns a queue on rdb.
func New(rdb redis.UniversalClient, opts Options) *Queue {
	if opts.Partitions < 1 {
		opts.Partitions = 1
	}
	q := &Queue{rdb: rdb, opts: opts, now: time.Now}
	for range opts.Partitions {
		q.accepts = append(q.accepts, coalesce.NewWeighted(batchMax, batchBytes, invocation.size, q.runEnqueue))
		q.finishes = append(q.finishes, coalesce.NewWeighted(batchMax, batchBytes, invocation.size, func(ctx context.Context, calls []invocation) ([]any, error) {
			return finishScript.run(ctx, q.rdb, calls)
		}))
	}
	return q
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
func sweepKey(p int) string                 { return tag(p) + "sweep" }
func idemKey(p int, tenantID, k string) string {
	sum := sha256.Sum256([]byte(k))
	return tag(p) + "idem:" + tenantID + ":" + hex.EncodeToString(sum[:16])
}

// NewMessage is a validated message ready to queue.
type NewMessage struct {
	TenantID  string
	Route     string
	MessageID string
	Payload   []byte // the request JSON, or what Kind says
	// Kind says how delivery reads Payload; "" (the request's JSON) is
	// not stored, so records of either age read alike.
	Kind string
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
	// Cost, when above zero, is spent from the tenant's Limit in the same
	// step (recipients). A scheduled message spends it when it falls due
	// instead (see MoveDue), from the Limit it was accepted under, and at
	// accept only its tenant's allowance for scheduling
	// (ratelimit.ScheduleWindow).
	Cost  int
	Limit ratelimit.Limit
	// Tags and Recipients (to, cc and bcc) name the listing indexes the
	// message joins (see listing.go).
	Tags       []string
	Recipients []string
}

// Accepted is the outcome of Enqueue.
type Accepted struct {
	ID string
	// Replayed is true when the idempotency key named an earlier message;
	// nothing new was queued.
	Replayed bool
	// Status is queued, or scheduled for a message held until its send time.
	Status Status
	// RateLimit is the tenant's budget after this message.
	RateLimit ratelimit.Result
	// Unreplicated is set when WaitReplicas replicas did not confirm the
	// write in time. The message is queued all the same: refusing it now
	// would make the caller send it again.
	Unreplicated bool
}

// enqueuePrelude is the enqueue script's per-call state: the listing
// indexes the call's invocations wrote, each with its TTL when first
// written and the longest TTL of the records put into it, and the tenants
// it added to the known tenants; and
// enqueueEpilogue extends each index's TTL, once per call.
const enqueuePrelude = `
local indexed, known = {}, {}
local function extend_indexes()
  for k, ix in pairs(indexed) do
    if ix.had < ix.need + 1000 then redis.call('PEXPIRE', k, math.max(ix.had, ix.need)) end
  end
end
`

const enqueueEpilogue = `
pcall(gcra_flush)
pcall(extend_indexes)
`

// enqueueScript accepts a message in one step: it checks the idempotency
// key, spends the tenant's rate budget (ratelimit.Lua, whose keys live in
// the partition's slot; for a message scheduled for later, its allowance
// for scheduling, see spending), writes the record, and queues it: into
// the stream, or, for a message scheduled for later, into the retry set
// due at its send time. A repeat or a refusal writes nothing.
// It also puts the id into the listing indexes (listing.go), trimming from
// them the ids accepted before the retention, and keeps each at least as
// long as the record.
// The tenant joins the partition's known tenants (KnownTenants), once per
// call however many of its messages the call holds.
// KEYS: stream, record, retry, idempotency key, rate windows..., listing
// indexes..., known tenants.
// ARGV: id, request hash, idempotency TTL ms, record TTL ms (see
// recordTTL), send at ms (0: now), has idempotency key, cost, window
// count, window triples..., index count, index trim bound, tenant id,
// field pairs...
// Returns {1, id, rate numbers...}, {0, first id} (repeat), {-1, first id}
// (key reused), or {-2, "", rate numbers...} (over the rate).
//
// Each listing index is trimmed, and its TTL read, once per call, by the
// first invocation that writes it, and extended once after the call's
// last invocation (extend_indexes), to the longest TTL of the call's
// records in it (or the one it had, when longer, never shortened):
// extended last, it outlives each of them. It is left as it is when its
// TTL, as read, was a second or more longer than theirs (a
// call takes far less: the second covers the time between the read and
// the call's end, Redis's clock running on while a script does). The
// trim bound of a call's first message is at most the call's span older
// than its last's: an entry that stays is trimmed by the next call, or
// skipped when read (see listing.go). On a busy replica most messages of
// a call share the partition's and the tenant's sets, so that saves their
// trim and TTL commands for all but one message of each call.
//
// The windows spent by the call's invocations are written once, after the
// last (gcra_flush). Under pcall: should that write fail, the messages are
// queued all the same and their replies say so; only the spend is lost.
var enqueueScript = newBatchScript(ratelimit.Lua+enqueuePrelude, enqueueEpilogue, `
if ARGV[6] == '1' then
  local prev = redis.call('GET', KEYS[4])
  if prev then
    local sep = string.find(prev, ' ', 1, true)
    local id = string.sub(prev, 1, sep - 1)
    if string.sub(prev, sep + 1) ~= ARGV[2] then return {-1, id} end
    return {0, id}
  end
end
local nwin = tonumber(ARGV[8])
local windows, tats, rate = {}, nil, {}
if nwin > 0 then
  for i = 1, nwin do windows[i] = KEYS[4 + i] end
  local ok
  ok, rate, tats = gcra_check(windows, ARGV, 9, tonumber(ARGV[7]))
  if not ok then
    local res = {-2, ''}
    for _, v in ipairs(rate) do table.insert(res, v) end
    return res
  end
end
if ARGV[6] == '1' then
  redis.call('SET', KEYS[4], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
end
local nidx = tonumber(ARGV[9 + 3 * nwin])
redis.call('HSET', KEYS[2], unpack(ARGV, 12 + 3 * nwin))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local ttl = tonumber(ARGV[4])
for i = 1, nidx do
  local k = KEYS[4 + nwin + i]
  redis.call('ZADD', k, 0, ARGV[1])
  local ix = indexed[k]
  if not ix then
    redis.call('ZREMRANGEBYLEX', k, '-', ARGV[10 + 3 * nwin])
    indexed[k] = {had = redis.call('PTTL', k), need = ttl}
  elseif ix.need < ttl then
    ix.need = ttl
  end
end
local tenant = ARGV[11 + 3 * nwin]
if not known[tenant] then
  redis.call('ZADD', KEYS[5 + nwin + nidx], 0, tenant)
  known[tenant] = true
end
if tonumber(ARGV[5]) > 0 then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
else
  redis.call('XADD', KEYS[1], '*', 'id', ARGV[1])
end
if nwin > 0 then gcra_commit(windows, tats) end
local res = {1, ARGV[1]}
for _, v in ipairs(rate) do table.insert(res, v) end
return res
`)

// Enqueue stores m and queues it, atomically: when it returns without
// error the message is in Redis and will be delivered. With m.Cost above
// zero it also spends the tenant's rate budget in the same step; over the
// budget the error is a *ratelimit.DeniedError and nothing is written.
func (q *Queue) Enqueue(ctx context.Context, m NewMessage) (_ Accepted, err error) {
	defer outage.Mark(&err)
	p := q.tenantPartition(m.TenantID)
	id := newID(p)
	now := ms(q.now())
	status, sendAt := StatusQueued, int64(0)
	if !m.SendAt.IsZero() && m.SendAt.After(q.now()) {
		status, sendAt = StatusScheduled, m.SendAt.UnixMilli()
	}
	hasIdem, idem := "0", tag(p)+"idem:-"
	if m.IdempotencyKey != "" {
		hasIdem, idem = "1", idemKey(p, m.TenantID, m.IdempotencyKey)
	}
	keys := []string{streamKey(p), recordKey(p, id), retryKey(p), idem}
	windows, charge, err := spending(p, m, sendAt > 0)
	if err != nil {
		return Accepted{}, fmt.Errorf("queue: enqueue: %w", err)
	}
	rateKeys, windowArgs, err := ratelimit.Args(windows)
	if err != nil {
		return Accepted{}, fmt.Errorf("queue: enqueue: %w", err)
	}
	keys = append(keys, rateKeys...)
	indexes := listKeys(p, m)
	keys = append(keys, indexes...)
	keys = append(keys, knownKey(p))
	args := []any{id, m.RequestHash, q.opts.IdempotencyTTL.Milliseconds(), q.recordTTL(time.UnixMilli(sendAt)).Milliseconds(), sendAt,
		hasIdem, m.Cost, len(windows)}
	args = append(args, windowArgs...)
	args = append(args, len(indexes), "("+idFloor(q.now().Add(-q.opts.Retention)), m.TenantID)
	args = append(args,
		"tenant_id", m.TenantID,
		"status", string(status),
		"meta", m.Meta,
		"send_at", sendAt,
		"route", m.Route,
		"message_id", m.MessageID,
		"created_at", now,
		"updated_at", now,
		"payload", m.Payload,
	)
	if charge != "" {
		args = append(args, "charge", charge)
	}
	if m.Kind != "" {
		args = append(args, "kind", m.Kind)
	}
	reply, err := invoke(ctx, q.accepts[p], invocation{keys, args})
	var replicationErr error
	if errors.Is(err, ErrNotReplicated) {
		replicationErr, err = err, nil
	}
	if err != nil {
		return Accepted{}, fmt.Errorf("queue: enqueue: %w", err)
	}
	res, ok := reply.([]any)
	if !ok || len(res) < 2 {
		return Accepted{}, fmt.Errorf("queue: enqueue: unexpected reply %v", reply)
	}
	first, _ := res[1].(string)
	nums := make([]int64, 0, len(res)-2)
	for _, v := range res[2:] {
		n, _ := v.(int64)
		nums = append(nums, n)
	}
	switch res[0].(int64) {
	case -2:
		_, denied := ratelimit.Decode(windows, false, nums)
		return Accepted{}, denied
	case -1:
		return Accepted{ID: first}, ErrIdempotencyKeyReused
	case 0:
		return Accepted{ID: first, Replayed: true}, nil
	}
	a := Accepted{ID: id, Status: status, Unreplicated: replicationErr != nil}
	if len(windows) > 0 {
		a.RateLimit, _ = ratelimit.Decode(windows, true, nums)
	}
	return a, nil
}

// recordTTL is how long a new record is kept: until it is due and the
// retention after, so a message scheduled past the retention still has its
// record when it falls due. Each later step that makes the message wait
// sets the same (finishScript, moveDueScript), and its final outcome sets
// the retention. A TTL rather than none at all: a record an older replica
// finishes (one that sets no TTL at the end) still expires.
func (q *Queue) recordTTL(due time.Time) time.Duration {
	return q.opts.Retention + max(0, due.Sub(q.now()))
}

// spending is what accepting m spends: the tenant's sending windows for a
// message to send now; for one scheduled for later, its allowance for
// scheduling, and the charge on its sending windows that MoveDue makes
// when it falls due, so that scheduled mail leaves at the tenant's rate
// rather than all at once.
func spending(p int, m NewMessage, scheduled bool) (windows []ratelimit.Window, charge string, err error) {
	if m.Cost <= 0 {
		return nil, "", nil
	}
	tag := "{q" + strconv.Itoa(p) + "}"
	sending := ratelimit.TenantWindows(tag, m.TenantID, m.Limit)
	if !scheduled {
		return sending, "", nil
	}
	charge, err = ratelimit.Charge(sending, m.Cost)
	return []ratelimit.Window{ratelimit.ScheduleWindow(tag, m.TenantID, m.Limit)}, charge, err
}

// RateWindows are the tenant's sending windows under lim, the ones
// Enqueue spends from (in its partition's slot), for reading its usage.
func (q *Queue) RateWindows(tenantID string, lim ratelimit.Limit) []ratelimit.Window {
	return ratelimit.TenantWindows("{q"+strconv.Itoa(q.tenantPartition(tenantID))+"}", tenantID, lim)
}

// tenantPartition is the partition of a tenant's messages: its rate
// windows and idempotency keys live in that partition's slot, so accepting
// a message is one script on one shard.
func (q *Queue) tenantPartition(tenantID string) int {
	h := fnv.New32a()
	h.Write([]byte(tenantID))
	return int(h.Sum32() % uint32(q.opts.Partitions))
}

// ErrNotReplicated means the message is stored on the primary but fewer
// replicas than OUTBOUND_REDIS_WAIT_REPLICAS confirmed it in time. It is
// queued and will be delivered; only its durability is less than asked.
var ErrNotReplicated = errors.New("queue: fewer replicas than required confirmed the write")

// runEnqueue runs the enqueue script for a batch of messages, followed by
// WAIT on the same connection when replicas must confirm the writes.
func (q *Queue) runEnqueue(ctx context.Context, calls []invocation) ([]any, error) {
	if q.opts.WaitReplicas <= 0 {
		return enqueueScript.run(ctx, q.rdb, calls)
	}
	timeout := q.opts.WaitTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	pipe := q.rdb.Pipeline()
	eval := enqueueScript.eval(ctx, pipe, calls)
	wait := redis.NewIntCmd(ctx, "wait", q.opts.WaitReplicas, timeout.Milliseconds())
	_ = pipe.Process(ctx, wait)
	if _, err := pipe.Exec(ctx); err != nil && eval.Err() != nil {
		return nil, eval.Err()
	}
	res, err := replies(eval, len(calls))
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
	"sent_at", "next_attempt_at", "attempts", "rejected", "suppressed", "error", "send_at", "due_at", "recipients"}

// Get returns a message's status record, without its payload.
func (q *Queue) Get(ctx context.Context, id string) (_ Record, err error) {
	defer outage.Mark(&err)
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
func (q *Queue) Ping(ctx context.Context) (err error) {
	defer outage.Mark(&err)
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
func (q *Queue) OldestAge(ctx context.Context, p int) (_ time.Duration, err error) {
	defer outage.Mark(&err)
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
