package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// eventGroup is the consumer group that turns message events into webhook
// deliveries.
const eventGroup = "webhooks"

// Event is a change of a message's status, written in the same step as
// the change itself.
type Event struct {
	Partition int
	StreamID  string
	Type      string // message.sent, message.deferred, message.failed, message.suppressed
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
func (q *Queue) ReadEvents(ctx context.Context, p int, consumer string, count int, block time.Duration) ([]Event, error) {
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
func (q *Queue) ReclaimEvents(ctx context.Context, p int, consumer string, minIdle time.Duration, count int) ([]Event, error) {
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
func (q *Queue) AckEvents(ctx context.Context, p int, streamIDs ...string) error {
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
