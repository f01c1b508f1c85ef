package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/outage"
)

// Outcome counters.
//
// The finish script counts each outcome that has an event type (sent,
// deferred, failed, suppressed; a deferral each time) in four hashes of
// the partition's slot, the slot of the record it writes:
//
//	outbound:{q<p>}:stats:<tenant>:h:<hour>   field "<minute>:<status>"
//	outbound:{q<p>}:stats:<tenant>:d:<day>    field "<hour>:<status>"
//	outbound:{q<p>}:stats:*:h:<hour>          the same, every tenant of the partition
//	outbound:{q<p>}:stats:*:d:<day>
//
// (minutes, hours and days counted from the Unix epoch). The tenant's and
// the partition's counters are thus written in the same step as the
// outcome, on one shard; the overall figures are the partitions' summed
// when read, and a tenant's its hashes of every partition (its partition
// changes when partitions are added). The hashes are named by the
// replica's clock, the fields by Redis's (redisclock): a reader sums the
// fields in its window from the hashes around it, so the two clocks
// disagreeing near a boundary moves nothing. An hour's hash lives 3 hours
// after its last write and a day's 3 days: each is read for the hour (the
// day) after its own, with a margin for the clocks.

const (
	statsHourTTL = 3 * time.Hour
	statsDayTTL  = 3 * 24 * time.Hour
)

// statsLua defines the TTLs the finish script gives the hashes.
var statsLua = "\nlocal STATS_HOUR_TTL = " + strconv.FormatInt(statsHourTTL.Milliseconds(), 10) +
	"\nlocal STATS_DAY_TTL = " + strconv.FormatInt(statsDayTTL.Milliseconds(), 10) + "\n"

// statsAll stands for every tenant in a stats key ('*' is no tenant id's
// character).
const statsAll = "*"

func statsHourKey(p int, who string, hour int64) string {
	return tag(p) + "stats:" + who + ":h:" + strconv.FormatInt(hour, 10)
}

func statsDayKey(p int, who string, day int64) string {
	return tag(p) + "stats:" + who + ":d:" + strconv.FormatInt(day, 10)
}

// statsKeys are the finish script's KEYS[6..9] for an outcome at now.
func statsKeys(p int, tenantID string, now time.Time) []string {
	hour, day := now.UnixMilli()/int64(time.Hour/time.Millisecond), now.UnixMilli()/int64(24*time.Hour/time.Millisecond)
	return []string{statsHourKey(p, tenantID, hour), statsDayKey(p, tenantID, day),
		statsHourKey(p, statsAll, hour), statsDayKey(p, statsAll, day)}
}

// Bucket is the outcomes counted in one minute or hour.
type Bucket struct {
	Start  time.Time
	Counts map[Status]int64 // by status; absent: none
}

// Counts are the outcomes of the last hour by minute and of the last day by
// hour, oldest first; the last bucket is the current (partial) one.
type Counts struct {
	Minutes []Bucket // 60
	Hours   []Bucket // 24
}

// Counts reads the outcome counters of one tenant, or of every tenant when
// tenantID is "": at most 3 hour hashes and 2 day hashes per partition.
func (q *Queue) Counts(ctx context.Context, tenantID string) (_ Counts, err error) {
	defer outage.Mark(&err)
	who := tenantID
	if who == "" {
		who = statsAll
	}
	now := q.now()
	const minMS, hourMS, dayMS = int64(time.Minute / time.Millisecond), int64(time.Hour / time.Millisecond), int64(24 * time.Hour / time.Millisecond)
	nowMS := now.UnixMilli()
	curMin, curHour := nowMS/minMS, nowMS/hourMS
	pipe := q.rdb.Pipeline()
	var hours, days []*redis.MapStringStringCmd
	for p := range q.opts.Partitions {
		for h := curHour - 1; h <= curHour+1; h++ {
			hours = append(hours, pipe.HGetAll(ctx, statsHourKey(p, who, h)))
		}
		for d := nowMS/dayMS - 1; d <= nowMS/dayMS; d++ {
			days = append(days, pipe.HGetAll(ctx, statsDayKey(p, who, d)))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Counts{}, fmt.Errorf("queue: counts: %w", err)
	}
	out := Counts{Minutes: buckets(60, curMin, minMS), Hours: buckets(24, curHour, hourMS)}
	for _, c := range hours {
		add(out.Minutes, curMin, c.Val())
	}
	for _, c := range days {
		add(out.Hours, curHour, c.Val())
	}
	return out, nil
}

// buckets are n empty buckets of size ms ending with the one numbered cur.
func buckets(n int, cur, size int64) []Bucket {
	out := make([]Bucket, n)
	for i := range out {
		out[i] = Bucket{Start: time.UnixMilli((cur - int64(n-1-i)) * size).UTC(), Counts: map[Status]int64{}}
	}
	return out
}

// add sums fields "<bucket>:<status>" into bs, whose last is numbered cur;
// fields outside them are left.
func add(bs []Bucket, cur int64, fields map[string]string) {
	for f, v := range fields {
		num, st, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		b, err := strconv.ParseInt(num, 10, 64)
		n, err2 := strconv.ParseInt(v, 10, 64)
		i := len(bs) - 1 - int(cur-b)
		if err != nil || err2 != nil || i < 0 || i >= len(bs) {
			continue
		}
		bs[i].Counts[Status(st)] += n
	}
}

// PartitionDepth is one partition's backlog.
type PartitionDepth struct {
	Partition int
	Depth     int64         // messages waiting in the stream or for a retry (Depth)
	OldestAge time.Duration // of the stream's oldest entry (OldestAge)
}

// Depths reads every partition's backlog, as the metrics watcher does.
func (q *Queue) Depths(ctx context.Context) ([]PartitionDepth, error) {
	out := make([]PartitionDepth, 0, q.opts.Partitions)
	for p := range q.opts.Partitions {
		d, err := q.Depth(ctx, p)
		if err != nil {
			return nil, err
		}
		age, err := q.OldestAge(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, PartitionDepth{Partition: p, Depth: d, OldestAge: age})
	}
	return out, nil
}

// knownKey is the set of the tenants that queued mail on partition p, all
// scored 0 so ordered by id. It is not trimmed: there are far fewer
// tenants than messages, and one that sent once stays listed.
func knownKey(p int) string { return tag(p) + "tenants" }

// KnownTenants returns up to limit ids, in byte order after after, of the
// tenants that ever queued mail, merging the partitions' sets.
func (q *Queue) KnownTenants(ctx context.Context, after string, limit int) (_ []string, err error) {
	defer outage.Mark(&err)
	lower := "-"
	if after != "" {
		lower = "(" + after
	}
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, q.opts.Partitions)
	for p := range cmds {
		cmds[p] = pipe.ZRangeByLex(ctx, knownKey(p), &redis.ZRangeBy{Min: lower, Max: "+", Count: int64(limit)})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("queue: known tenants: %w", err)
	}
	var all []string
	for _, c := range cmds {
		all = append(all, c.Val()...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	return all[:min(len(all), limit)], nil
}

// Held is how many of the tenant's messages wait for its account to be
// fixed (held for the tenant, see Outcome.HoldForTenant), over every
// partition.
func (q *Queue) Held(ctx context.Context, tenantID string) (_ int64, err error) {
	defer outage.Mark(&err)
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, q.opts.Partitions)
	for p := range cmds {
		cmds[p] = pipe.SCard(ctx, heldKey(p, tenantID))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("queue: held of %s: %w", tenantID, err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}
