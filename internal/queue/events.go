package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/outage"
)

// Event is a change of a message's status, written in the same step as
// the change itself.
type Event struct {
	Partition int
	StreamID  string
	Type      string // one of EventTypes
	MessageID string
	TenantID  string
	Route     string
	Meta      []byte // the request's tags and metadata, JSON
	CreatedAt time.Time
	At        time.Time
	// First is false for a deferral after the message's first one.
	First   bool
	Attempt []byte // the attempt that caused it, JSON; empty when none
	// Recipients is every recipient's state as the record had it, JSON
	// (see Recipient); empty before any attempt.
	Recipients []byte
}

// ReadEvents takes up to count new events of partition p for consumer.
func (q *Queue) ReadEvents(ctx context.Context, p int, consumer string, count int, block time.Duration) (_ []Event, err error) {
	defer outage.Mark(&err)
	args := &redis.XReadGroupArgs{Group: eventGroup, Consumer: consumer, Streams: []string{eventsKey(p), ">"},
		Count: int64(count), Block: block}
	streams, err := q.rdb.XReadGroup(ctx, args).Result()
	if isNoGroup(err) {
		if err := q.rdb.XGroupCreateMkStream(ctx, eventsKey(p), eventGroup, "0").Err(); err != nil &&
			!strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return nil, fmt.Errorf("queue: event group of partition %d: %w", p, err)
		}
		streams, err = q.rdb.XReadGroup(ctx, args).Result()
	}
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: read events of partition %d: %w", p, err)
	}
	var out []Event
	for _, s := range streams {
		out = append(out, toEvents(p, s.Messages)...)
	}
	return out, nil
}

// ReclaimEvents takes over events another consumer left unacknowledged
// for minIdle.
func (q *Queue) ReclaimEvents(ctx context.Context, p int, consumer string, minIdle time.Duration, count int) (_ []Event, err error) {
	defer outage.Mark(&err)
	msgs, _, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: eventsKey(p), Group: eventGroup,
		Consumer: consumer, MinIdle: minIdle, Start: "0-0", Count: int64(count)}).Result()
	if isNoGroup(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: reclaim events of partition %d: %w", p, err)
	}
	return toEvents(p, msgs), nil
}

// AckEvents marks events handled and removes them.
func (q *Queue) AckEvents(ctx context.Context, p int, streamIDs ...string) (err error) {
	defer outage.Mark(&err)
	if len(streamIDs) == 0 {
		return nil
	}
	pipe := q.rdb.TxPipeline()
	pipe.XAck(ctx, eventsKey(p), eventGroup, streamIDs...)
	pipe.XDel(ctx, eventsKey(p), streamIDs...)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("queue: ack events of partition %d: %w", p, err)
	}
	return nil
}

// trimEventsScript trims the event stream below the oldest entry the
// webhooks group still needs: its oldest pending entry (read, not yet
// acknowledged) or, with none pending, the entry after the last one it
// read. Then, as a last resort for Redis's memory, it drops the oldest
// entries past the cap, unread or not, and says how many.
// KEYS: events. ARGV: group, cap (0: none). Returns {trimmed, dropped}.
var trimEventsScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local floor
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then
    if tonumber(f['pending']) > 0 then
      floor = redis.call('XPENDING', KEYS[1], ARGV[1])[2]
    else
      -- ms-seq; miniredis says "0" of a group that has read nothing
      local ms, seq = string.match(f['last-delivered-id'], '^(%d+)-?(%d*)$')
      floor = ms .. '-' .. string.format('%d', (tonumber(seq) or 0) + 1)
    end
  end
end
local trimmed, dropped = 0, 0
if floor then trimmed = redis.call('XTRIM', KEYS[1], 'MINID', floor) end
local cap = tonumber(ARGV[2])
if cap > 0 and redis.call('XLEN', KEYS[1]) > cap then
  dropped = redis.call('XTRIM', KEYS[1], 'MAXLEN', cap)
end
return {trimmed, dropped}
`)

// TrimEvents removes from partition p's event stream the entries the
// webhooks group has read and acknowledged (AckEvents deletes most as it
// goes; this frees the rest), never one it has not: an event no webhook
// has had yet stays however many pile up behind a stalled dispatcher, up
// to maxLen entries (0: no cap). Past maxLen the oldest are dropped all the
// same, so Redis cannot run out of memory, and dropped says how many:
// events lost before any webhook was told.
func (q *Queue) TrimEvents(ctx context.Context, p int, maxLen int64) (trimmed, dropped int64, err error) {
	defer outage.Mark(&err)
	res, err := trimEventsScript.Run(ctx, q.rdb, []string{eventsKey(p)}, eventGroup, maxLen).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("queue: trim events of partition %d: %w", p, err)
	}
	return res[0], res[1], nil
}

func toEvents(p int, msgs []redis.XMessage) []Event {
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		str := func(k string) string { v, _ := m.Values[k].(string); return v }
		at, _ := strconv.ParseInt(str("at"), 10, 64)
		out = append(out, Event{Partition: p, StreamID: m.ID, Type: str("type"), MessageID: str("message_id"),
			TenantID: str("tenant_id"), Route: str("route"), Meta: []byte(str("meta")),
			CreatedAt: parseMS(str("created_at")), At: time.UnixMilli(at).UTC(), First: str("first") == "1",
			Attempt: []byte(str("attempt")), Recipients: []byte(str("recipients"))})
	}
	return out
}
