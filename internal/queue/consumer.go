package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/outage"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/redisclock"
)

// Entry is a stream entry handed to a worker: one delivery of one message.
type Entry struct {
	Partition int
	StreamID  string
	ID        string // the message id
}

// EnsureGroups creates the consumer group of every partition. The group
// starts at the beginning of the stream, so entries written before any
// worker ever ran are not skipped.
func (q *Queue) EnsureGroups(ctx context.Context) (err error) {
	defer outage.Mark(&err)
	for p := range q.opts.Partitions {
		if err := q.ensureGroup(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (q *Queue) ensureGroup(ctx context.Context, p int) error {
	err := q.rdb.XGroupCreateMkStream(ctx, streamKey(p), group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("queue: create group on partition %d: %w", p, err)
	}
	return nil
}

// ReadWait is how long the service's readers of a stream (delivery's and
// the webhooks') block on it while it is empty. A blocked read returns
// the moment an entry arrives, so this costs no latency; it bounds how
// long a shutdown waits for its readers, since go-redis cannot cancel a
// blocking command, against the idle reads it makes (a few a second per
// partition).
const ReadWait = 250 * time.Millisecond

// Read takes up to count new entries of partition p for consumer, waiting
// up to block for some to arrive. None is not an error.
func (q *Queue) Read(ctx context.Context, p int, consumer string, count int, block time.Duration) (_ []Entry, err error) {
	defer outage.Mark(&err)
	args := &redis.XReadGroupArgs{Group: group, Consumer: consumer, Streams: []string{streamKey(p), ">"},
		Count: int64(count), Block: block}
	streams, err := q.rdb.XReadGroup(ctx, args).Result()
	if isNoGroup(err) {
		if err := q.ensureGroup(ctx, p); err != nil {
			return nil, err
		}
		streams, err = q.rdb.XReadGroup(ctx, args).Result()
	}
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: read partition %d: %w", p, err)
	}
	var out []Entry
	for _, s := range streams {
		out = append(out, entries(p, s.Messages)...)
	}
	return out, nil
}

func entries(p int, msgs []redis.XMessage) []Entry {
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		id, _ := m.Values["id"].(string)
		out = append(out, Entry{Partition: p, StreamID: m.ID, ID: id})
	}
	return out
}

// Reclaim takes over entries of partition p that another consumer has held
// without touching them for minIdle: its process most likely died
// mid-delivery.
func (q *Queue) Reclaim(ctx context.Context, p int, consumer string, minIdle time.Duration, count int) (_ []Entry, err error) {
	defer outage.Mark(&err)
	msgs, _, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: streamKey(p), Group: group,
		Consumer: consumer, MinIdle: minIdle, Start: "0-0", Count: int64(count)}).Result()
	if isNoGroup(err) {
		return nil, q.ensureGroup(ctx, p)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: reclaim partition %d: %w", p, err)
	}
	return entries(p, msgs), nil
}

// Touch resets the idle time of entries this consumer is still working on,
// so a slow send is not reclaimed by another worker.
func (q *Queue) Touch(ctx context.Context, p int, consumer string, streamIDs []string) (err error) {
	defer outage.Mark(&err)
	if len(streamIDs) == 0 {
		return nil
	}
	err = q.rdb.XClaimJustID(ctx, &redis.XClaimArgs{Stream: streamKey(p), Group: group, Consumer: consumer,
		MinIdle: 0, Messages: streamIDs}).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("queue: touch partition %d: %w", p, err)
	}
	return nil
}

// beginScript marks a message as being sent and returns its record, or
// acknowledges the entry and returns false when there is nothing to do:
// the message is already final (a duplicate entry). A message whose
// record is gone (evicted, deleted, or expired under an older replica's
// rules) is failed where it can be seen: a record that says failed with
// the reason, kept for the retention, and a message.failed event; the
// reply is 'missing'. Its tenant is not known any more: the event names
// none. It counts the begins since the message's last outcome (the
// record's begun field, which Finish and Release clear).
// KEYS: stream, record, events. ARGV: stream id, now ms, message id,
// created ms, retention ms, error, attempt JSON.
var beginScript = newBatchScript(luaNames, "", `
local h = redis.call('HGETALL', KEYS[2])
local st, begun
for i = 1, #h, 2 do
  if h[i] == 'status' then st = i + 1 elseif h[i] == 'updated_at' then h[i + 1] = ARGV[2]
  elseif h[i] == 'begun' then begun = i + 1 end
end
if (not st) or FINAL[h[st]] then
  redis.call('XACK', KEYS[1], GROUP, ARGV[1])
  redis.call('XDEL', KEYS[1], ARGV[1])
  if st then return false end
  redis.call('HSET', KEYS[2], 'status', STATUS.failed, 'error', ARGV[6], 'created_at', ARGV[4], 'updated_at', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  redis.call('XADD', KEYS[3], '*', 'type', EVENT.failed, 'message_id', ARGV[3],
    'tenant_id', '', 'route', '', 'meta', '', 'created_at', ARGV[4], 'at', ARGV[2], 'first', '1', 'attempt', ARGV[7])
  return 'missing'
end
h[st] = STATUS.sending
redis.call('HSET', KEYS[2], 'status', STATUS.sending, 'updated_at', ARGV[2])
local n = tostring(redis.call('HINCRBY', KEYS[2], 'begun', 1))
if begun then h[begun] = n else h[#h + 1] = 'begun'; h[#h + 1] = n end
return h
`)

// CodeRecordMissing is the error code of a message failed because its
// record was gone when its delivery began.
const CodeRecordMissing = "record_missing"

// ErrRecordMissing is reported by Begin for each entry whose message it
// failed as record_missing.
var ErrRecordMissing = errors.New("queue: the message's record was gone; failed as " + CodeRecordMissing)

// recordMissingText is the failed record's error and the event's reason.
const recordMissingText = CodeRecordMissing + ": the message's record was gone when its delivery began " +
	"(evicted or deleted from Redis, or expired under an older version's retention); it was not sent"

// RecordsMissing is how many messages this process failed as
// record_missing since it started.
func (q *Queue) RecordsMissing() uint64 { return q.missing.Load() }

// Started is an entry whose delivery has begun, with its message.
type Started struct {
	Entry
	Record Record
	// Begun counts the begins of the message since its last outcome was
	// recorded, this one included: above 1, workers took it before and
	// stopped (crashed, were killed, lost Redis) without finishing.
	Begun int
}

// Begin starts the delivery of entries read together from one partition
// (one hash slot on Redis Cluster), in one round trip, and returns those
// with something to deliver; the others (already final, or without a
// message id) are acknowledged; those whose record is gone are
// failed as record_missing and reported in err (ErrRecordMissing). An
// entry whose record cannot be read is left pending, to be reclaimed, and
// reported in err along with the others.
func (q *Queue) Begin(ctx context.Context, es []Entry) (_ []Started, err error) {
	defer outage.Mark(&err)
	if len(es) == 0 {
		return nil, nil
	}
	calls := make([]invocation, 0, len(es))
	valid := make([]Entry, 0, len(es))
	var errs []error
	at := q.now()
	now := ms(at)
	missing, err := json.Marshal(Attempt{At: at.UTC(), Error: CodeRecordMissing, Message: recordMissingText})
	if err != nil {
		return nil, fmt.Errorf("queue: begin: %w", err)
	}
	for _, e := range es {
		if e.ID == "" { // an entry without a message id cannot be delivered
			if err := q.ack(ctx, e); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		valid = append(valid, e)
		calls = append(calls, invocation{[]string{streamKey(e.Partition), recordKey(e.Partition, e.ID), eventsKey(e.Partition)},
			[]any{e.StreamID, now, e.ID, createdOf(e.ID), q.opts.Retention.Milliseconds(), recordMissingText, missing}})
	}
	if len(calls) == 0 {
		return nil, errors.Join(errs...)
	}
	replies, err := beginScript.run(ctx, q.rdb, calls)
	if err != nil {
		return nil, fmt.Errorf("queue: begin %d entries: %w", len(calls), err)
	}
	out := make([]Started, 0, len(valid))
	for i, e := range valid {
		if err := replyErr(replies[i]); err != nil {
			errs = append(errs, fmt.Errorf("queue: begin %s: %w", e.ID, err))
			continue
		}
		if replies[i] == "missing" {
			q.missing.Add(1)
			errs = append(errs, fmt.Errorf("queue: begin %s: %w", e.ID, ErrRecordMissing))
			continue
		}
		res, ok := replies[i].([]any)
		if !ok { // nothing to deliver
			continue
		}
		h := make(map[string]string, len(res)/2)
		for i := 0; i+1 < len(res); i += 2 {
			k, _ := res[i].(string)
			v, _ := res[i+1].(string)
			h[k] = v
		}
		rec, err := decodeRecord(e.ID, h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		begun, _ := strconv.Atoi(h["begun"])
		out = append(out, Started{Entry: e, Record: rec, Begun: begun})
	}
	return out, errors.Join(errs...)
}

// createdOf is when a message was accepted, in ms, read from its id (a
// ULID holds its time): what a record that is gone no longer says.
func createdOf(id string) int64 {
	u, _, _ := strings.Cut(id, "-")
	parsed, err := ulid.ParseStrict(u)
	if err != nil {
		return 0
	}
	return int64(parsed.Time())
}

func (q *Queue) ack(ctx context.Context, e Entry) error {
	pipe := q.rdb.TxPipeline()
	pipe.XAck(ctx, streamKey(e.Partition), group, e.StreamID)
	pipe.XDel(ctx, streamKey(e.Partition), e.StreamID)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("queue: ack %s: %w", e.StreamID, err)
	}
	return nil
}

// Outcome is how one delivery of a message ended.
type Outcome struct {
	// Status is StatusSent, StatusDeferred or StatusFailed, or StatusQueued
	// for a message put back without an attempt (paced) to go after RetryIn.
	Status     Status
	Route      string    // the route the attempt took
	Attempts   []Attempt // the whole history, the new attempt(s) last
	Rejected   []Rejection
	Suppressed []Suppression
	Recipients []Recipient   // every recipient's state after the attempt; nil keeps the record's
	Error      string        // for failed: why
	RetryIn    time.Duration // for deferred or queued: when to try again
	// HoldForTenant marks a deferral caused by the tenant's own account
	// (a refused login, say): the next write of the tenant's profile makes
	// the message due at once instead of waiting out its backoff.
	HoldForTenant bool
	// Unheard marks an outcome no webhook listens for: no event is
	// written for it.
	Unheard bool
}

// finishScript acknowledges the entry and records the outcome; a deferred
// (or paced, or held) message goes to the retry set, due at Redis's clock
// plus the delay, and its record is kept until then and the retention
// after, as is the tenant's held set when it joins it (a paused tenant's
// messages wake from it on resume, however long the pause); a final
// outcome keeps the record for the retention from now. A change a webhook
// may want to hear of is appended, in the same step, to the partition's
// event stream: sent, failed, suppressed, and deferred (flagged "first"
// the first time for the message), unless no webhook listens for it; it
// carries the attempt and every recipient's state. The stream is not
// capped here, where the event might be dropped unread: TrimEvents trims
// what was delivered. An entry no longer pending was finished already (a
// retried Finish whose first reply was lost, or another replica's):
// nothing is written again, so the event is not repeated.
// An outcome with an event type (heard or not) is also counted, by Redis's
// clock, in the stats hashes of its tenant and of the partition (see
// stats.go): a field "<minute>:<status>" of the hour's hash, and
// "<hour>:<status>" of the day's.
// KEYS: stream, record, retry, held, events, tenant's hour and day stats,
// partition's hour and day stats. ARGV: stream id, message id, status,
// retry ms, hold flag, retention ms, attempt JSON, route, event flag,
// field pairs...
var finishScript = newBatchScript(luaNames+redisclock.Lua+statsLua, "", `
if redis.call('XACK', KEYS[1], GROUP, ARGV[1]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[1])
local r = redis.call('HMGET', KEYS[2], 'tenant_id', 'meta', 'created_at')
if not r[1] then return 0 end
redis.call('HDEL', KEYS[2], 'begun')
local now = redis_now_ms()
local status = ARGV[3]
local fields, due = {'status', status, 'updated_at', now, 'route', ARGV[8]}, nil
if status == STATUS.deferred or status == STATUS.queued then
  due = now + tonumber(ARGV[4])
  table.insert(fields, 'next_attempt_at')
  table.insert(fields, due)
elseif status == STATUS.sent then
  table.insert(fields, 'sent_at')
  table.insert(fields, now)
end
for i = 10, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
if due then
  redis.call('ZADD', KEYS[3], due, ARGV[2])
  local keep = due - now + tonumber(ARGV[6])
  redis.call('PEXPIRE', KEYS[2], keep)
  if ARGV[5] == '1' then
    redis.call('SADD', KEYS[4], ARGV[2])
    if redis.call('PTTL', KEYS[4]) < keep then redis.call('PEXPIRE', KEYS[4], keep) end
  end
else
  redis.call('HDEL', KEYS[2], 'payload', 'next_attempt_at')
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
if EVENT[status] and ARGV[9] == '1' then
  local first = '1'
  if status == STATUS.deferred then
    if redis.call('HSETNX', KEYS[2], 'deferred_notified', '1') == 0 then first = '0' end
  end
  redis.call('XADD', KEYS[5], '*', 'type', EVENT[status], 'message_id', ARGV[2],
    'tenant_id', r[1], 'route', ARGV[8], 'meta', r[2] or '', 'created_at', r[3] or '', 'at', now,
    'first', first, 'attempt', ARGV[7], 'recipients', redis.call('HGET', KEYS[2], 'recipients') or '')
end
if EVENT[status] then
  local minute, hour = math.floor(now / 60000), math.floor(now / 3600000)
  for i = 6, 8, 2 do
    redis.call('HINCRBY', KEYS[i], minute .. ':' .. status, 1)
    redis.call('PEXPIRE', KEYS[i], STATS_HOUR_TTL)
    redis.call('HINCRBY', KEYS[i + 1], hour .. ':' .. status, 1)
    redis.call('PEXPIRE', KEYS[i + 1], STATS_DAY_TTL)
  end
end
return 1
`)

// Finish records how the delivery of e ended and acknowledges e. The
// outcomes of messages finishing at the same time are written together.
// Finishing an entry again writes nothing, so a Finish whose answer was
// lost may be retried.
func (q *Queue) Finish(ctx context.Context, e Entry, tenantID string, out Outcome) (err error) {
	defer outage.Mark(&err)
	attempts := out.Attempts
	if len(attempts) > maxAttempts {
		attempts = attempts[len(attempts)-maxAttempts:]
	}
	attemptsJSON, err := json.Marshal(attempts)
	if err != nil {
		return fmt.Errorf("queue: finish %s: %w", e.ID, err)
	}
	hold := ""
	if out.HoldForTenant {
		hold = "1"
	}
	var last []byte
	if len(attempts) > 0 {
		last, _ = json.Marshal(attempts[len(attempts)-1])
	}
	event := "1"
	if out.Unheard {
		event = "0"
	}
	args := []any{e.StreamID, e.ID, string(out.Status), out.RetryIn.Milliseconds(), hold, q.opts.Retention.Milliseconds(), last,
		out.Route, event, "attempts", attemptsJSON, "error", out.Error}
	if len(out.Rejected) > 0 {
		rej, err := json.Marshal(out.Rejected)
		if err != nil {
			return fmt.Errorf("queue: finish %s: %w", e.ID, err)
		}
		args = append(args, "rejected", rej)
	}
	if len(out.Suppressed) > 0 {
		sup, err := json.Marshal(out.Suppressed)
		if err != nil {
			return fmt.Errorf("queue: finish %s: %w", e.ID, err)
		}
		args = append(args, "suppressed", sup)
	}
	if len(out.Recipients) > 0 {
		rcpts, err := json.Marshal(out.Recipients)
		if err != nil {
			return fmt.Errorf("queue: finish %s: %w", e.ID, err)
		}
		args = append(args, "recipients", rcpts)
	}
	p := e.Partition
	keys := []string{streamKey(p), recordKey(p, e.ID), retryKey(p), heldKey(p, tenantID), eventsKey(p)}
	keys = append(keys, statsKeys(p, tenantID, q.now())...)
	if _, err := invoke(ctx, q.finishes[p], invocation{keys, args}); err != nil {
		return fmt.Errorf("queue: finish %s: %w", e.ID, err)
	}
	return nil
}

// releaseScript hands an entry this worker took but will not start back
// to the stream (shutdown), so another worker picks it up at once rather
// than after the claim timeout. KEYS: stream, record. ARGV: stream id, id.
var releaseScript = redis.NewScript(luaNames + `
redis.call('XACK', KEYS[1], GROUP, ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], 'status') == STATUS.sending then
  redis.call('HSET', KEYS[2], 'status', STATUS.queued)
end
redis.call('HDEL', KEYS[2], 'begun')
redis.call('XADD', KEYS[1], '*', 'id', ARGV[2])
return 1
`)

// Release gives back an entry that was read but not delivered.
func (q *Queue) Release(ctx context.Context, e Entry) (err error) {
	defer outage.Mark(&err)
	err = releaseScript.Run(ctx, q.rdb, []string{streamKey(e.Partition), recordKey(e.Partition, e.ID)},
		e.StreamID, e.ID).Err()
	if err != nil {
		return fmt.Errorf("queue: release %s: %w", e.ID, err)
	}
	return nil
}

// moveDueScript moves retries and scheduled messages whose time has come
// (by Redis's clock) to the stream. A scheduled message carries the charge
// on its tenant's rate windows that it did not spend at accept (its
// record's charge field; a retry has none, having spent at accept): it is
// spent now, as of the moment the windows can take it (gcra_charge). Due
// at once, the message goes; due later, it stays scheduled, due then, and
// goes without a second charge. The windows and the record live in the
// partition's slot, as the retry set does, so this is one script on one
// shard of a Redis Cluster, though it names the records it reads itself.
//
// Records live while their messages do (see recordTTL): one rescheduled is
// kept until it is due and the retention after, and one moved at least
// half the retention from now (an older replica's, or one whose move came
// late). A scheduled message moved for the first time records when
// (due_at), where its retry window starts. Then a few members of the retry
// set (a ZSCAN cursor kept in KEYS[3]) have their records' TTL checked:
// records an older replica wrote expire the retention after accept, even
// when due later, and are given the same TTL. A pass over the set done, the
// next starts a quarter of the retention later.
// KEYS: retry, stream, sweep cursor. ARGV: limit, record key prefix,
// retention ms, sweep count.
// Returns how many due entries it handled, moved or rescheduled.
var moveDueScript = redis.NewScript(luaNames + ratelimit.Lua + `
local now = gcra_now()
local nowms = math.floor(now / 1000)
local keep = tonumber(ARGV[3])
-- keepFor gives a record that has a TTL at least ms - keep/2 left: ms.
local function keepFor(rec, ms)
  local ttl = redis.call('PTTL', rec)
  if ttl >= 0 and ttl < ms - keep / 2 then redis.call('PEXPIRE', rec, ms) end
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', nowms, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(due) do
  local rec = ARGV[2] .. id
  local f = redis.call('HMGET', rec, 'charge', 'status')
  local at = now
  if f[1] then
    at = gcra_charge(f[1])
    redis.call('HDEL', rec, 'charge')
  end
  if at > now then
    local ms = math.ceil(at / 1000)
    redis.call('ZADD', KEYS[1], ms, id)
    redis.call('HSET', rec, 'next_attempt_at', ms)
    redis.call('PEXPIRE', rec, ms - nowms + keep)
  else
    redis.call('XADD', KEYS[2], '*', 'id', id)
    redis.call('ZREM', KEYS[1], id)
    keepFor(rec, keep)
    if f[2] == STATUS.scheduled then redis.call('HSETNX', rec, 'due_at', nowms) end
  end
end
pcall(gcra_flush)
local cursor = redis.call('GET', KEYS[3])
if cursor ~= 'done' then
  local page = redis.call('ZSCAN', KEYS[1], cursor or '0', 'COUNT', tonumber(ARGV[4]))
  for i = 1, #page[2], 2 do keepFor(ARGV[2] .. page[2][i], tonumber(page[2][i + 1]) - nowms + keep) end
  if page[1] == '0' then
    redis.call('SET', KEYS[3], 'done', 'PX', math.max(1, math.floor(keep / 4)))
  else
    redis.call('SET', KEYS[3], page[1], 'PX', keep)
  end
end
return #due
`)

// sweepCount is how many members of the retry set each MoveDue call checks
// the records of: at the mover's pace (every second or faster, per
// partition and replica) a pass over a million waiting messages takes a few
// hours, well inside the quarter retention it has.
const sweepCount = 100

// MoveDue requeues up to limit due retries and scheduled messages of
// partition p and says how many due entries it handled: moved to the
// stream, or, for scheduled mail its tenant's rate windows cannot take
// yet, rescheduled to when they can. Rescheduled entries are no longer
// due, so a caller that calls again while the answer is limit reaches the
// other tenants' due messages in the same pass.
func (q *Queue) MoveDue(ctx context.Context, p, limit int) (_ int, err error) {
	defer outage.Mark(&err)
	n, err := moveDueScript.Run(ctx, q.rdb, []string{retryKey(p), streamKey(p), sweepKey(p)}, limit, tag(p)+"msg:",
		q.opts.Retention.Milliseconds(), sweepCount).Int()
	if err != nil {
		return 0, fmt.Errorf("queue: move due retries of partition %d: %w", p, err)
	}
	return n, nil
}

// wakeScript makes a tenant's held messages due now. ZADD XX touches only
// those still waiting. KEYS: held, retry.
var wakeScript = redis.NewScript(redisclock.Lua + `
local ids = redis.call('SMEMBERS', KEYS[1])
local now = redis_now_ms()
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[2], 'XX', now, id) end
redis.call('DEL', KEYS[1])
return #ids
`)

// WakeHeld makes every message held for the tenant's account due at once:
// its profile was just rewritten, so the fault may be fixed.
func (q *Queue) WakeHeld(ctx context.Context, tenantID string) (_ int, err error) {
	defer outage.Mark(&err)
	total := 0
	for p := range q.opts.Partitions {
		n, err := wakeScript.Run(ctx, q.rdb, []string{heldKey(p, tenantID), retryKey(p)}).Int()
		if err != nil {
			return total, fmt.Errorf("queue: wake held messages of %s: %w", tenantID, err)
		}
		total += n
	}
	return total, nil
}

// Depth is how many messages partition p holds that are not final: waiting
// in the stream or scheduled for retry.
func (q *Queue) Depth(ctx context.Context, p int) (_ int64, err error) {
	defer outage.Mark(&err)
	pipe := q.rdb.Pipeline()
	xlen := pipe.XLen(ctx, streamKey(p))
	zcard := pipe.ZCard(ctx, retryKey(p))
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("queue: depth of partition %d: %w", p, err)
	}
	return xlen.Val() + zcard.Val(), nil
}

// pruneScript removes the consumers of the given groups that hold no
// entries and have not been seen for ARGV[last] ms. Every replica start
// names a new consumer (see cmd/outbound), so without this the groups
// would keep one per restart forever. A consumer holding entries is never
// removed: DELCONSUMER would drop its entries from the pending list, and
// nothing would ever reclaim them. The check and the removal are one
// atomic step, so a consumer cannot pick up an entry in between; a live
// one removed while idle is simply created again by its next read.
// KEYS: streams; ARGV: the group of each stream, then the idle ms.
var pruneScript = redis.NewScript(`
local idle = tonumber(ARGV[#KEYS + 1])
local removed = 0
for i, key in ipairs(KEYS) do
  local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', key, ARGV[i])
  if ok then
    for _, c in ipairs(consumers) do
      local f = {}
      for j = 1, #c, 2 do f[c[j]] = c[j + 1] end
      if f['pending'] == 0 and f['idle'] >= idle then
        redis.call('XGROUP', 'DELCONSUMER', key, ARGV[i], f['name'])
        removed = removed + 1
      end
    end
  end
end
return removed
`)

// PruneConsumers removes, from partition p's delivery and event groups,
// the consumers that hold no entries and were last seen over idle ago:
// those of replicas that stopped or died (their entries were reclaimed by
// others). It returns how many it removed.
func (q *Queue) PruneConsumers(ctx context.Context, p int, idle time.Duration) (_ int, err error) {
	defer outage.Mark(&err)
	n, err := pruneScript.Run(ctx, q.rdb, []string{streamKey(p), eventsKey(p)}, group, eventGroup, idle.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("queue: prune consumers of partition %d: %w", p, err)
	}
	return n, nil
}
