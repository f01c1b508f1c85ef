package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/outage"
)

// Listing indexes.
//
// Every accepted message is put, by the enqueue script that writes its
// record, into sorted sets of its partition's slot ({q<p>}, the record's):
//
//	outbound:{q<p>}:list:*                  every message of the partition
//	outbound:{q<p>}:list:<tenant>           the tenant's messages
//	outbound:{q<p>}:list:<tenant>:tag:<h>   ... with a tag (h: hash of the tag)
//	outbound:{q<p>}:list:<tenant>:to:<h>    ... to a recipient (h: hash of the lower-cased address)
//
// ('*' is no tenant id's character.) Members are message ids, all scored
// 0: an id starts with its ULID, whose first ten characters are the accept
// time in ms, so the sets' byte order (ZRANGE BYLEX) is accept order, with
// an exact tie-break inside one millisecond. That makes the last id of a
// page an exact cursor (?after=<id>, as the suppression list pages by
// address), where a score of ms would leave the messages of one
// millisecond ambiguous; since and until are id bounds made from a time.
//
// The entries live and expire with their records: each write removes,
// from the sets it writes, the ids accepted longer than the retention ago
// (ZREMRANGEBYLEX: a record lives at least the retention after accept,
// so those left are alive), and gives each set at least the new record's
// TTL, so a set no longer written expires whole. An id whose record is
// gone all the same (a set not written since, an evicted record) is
// skipped when read, removed, and counted against the page's scan.
// Listings thus show the messages accepted within the retention; one
// waiting longer (scheduled far ahead, a paused tenant's) still answers by
// id.
//
// A cross-tenant listing merges the partitions' "*" sets, and a tenant's
// merges its sets of every partition (a tenant's partition changes when
// partitions are added): Partitions is small (1 by default).

func listPrefix(p int) string                     { return tag(p) + "list:" }
func listAllKey(p int) string                     { return listPrefix(p) + "*" }
func listTenantKey(p int, tenantID string) string { return listPrefix(p) + tenantID }
func listTagKey(p int, tenantID, t string) string {
	return listTenantKey(p, tenantID) + ":tag:" + shortHash(t)
}
func listToKey(p int, tenantID, email string) string {
	return listTenantKey(p, tenantID) + ":to:" + shortHash(strings.ToLower(email))
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

// listKeys are the index sets a new message joins.
func listKeys(p int, m NewMessage) []string {
	keys := []string{listAllKey(p), listTenantKey(p, m.TenantID)}
	seen := map[string]bool{}
	for _, t := range m.Tags {
		if k := listTagKey(p, m.TenantID, t); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, e := range m.Recipients {
		if k := listToKey(p, m.TenantID, e); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// idFloor is the smallest id accepted at t or later: a ULID of t's
// millisecond with no randomness.
func idFloor(t time.Time) string {
	var u ulid.ULID
	if t.UnixMilli() > 0 {
		_ = u.SetTime(uint64(t.UnixMilli()))
	}
	return u.String()
}

// ListFilter says which messages List answers.
type ListFilter struct {
	TenantID string // "": every tenant's (To and Tag need a tenant)
	Status   Status // "": any
	To       string // a recipient (to, cc or bcc), any case
	Tag      string
	Since    time.Time // accepted at or after; zero: no bound
	Until    time.Time // accepted at or before; zero: no bound
	After    string    // the Next of the page before
	Limit    int
}

// Listed is one message of a listing: its record without attempts, and
// its tags.
type Listed struct {
	Record
	Tags []string
}

// ListPage is one page of a listing, newest first. Next, when set, is the
// After of the next page; a page may hold fewer than Limit messages (even
// none) and still have a Next, when its scan ran out first (see
// ListScanMax).
type ListPage struct {
	Messages []Listed
	Next     string
}

// ListScanMax bounds the index entries one page looks at: with a status
// filter (read from each record, since status changes after the index is
// written), or past ids whose records are gone, a page stops after this
// many and says where to go on.
const ListScanMax = 5000

// listFilterChunk is how many entries a page filtered on the records
// fetches at a time.
const listFilterChunk = 500

// ErrListNeedsTenant means a recipient or tag filter was asked for across
// tenants: those indexes are per tenant.
var ErrListNeedsTenant = errors.New("queue: list: to and tag filters need a tenant")

// listFields are what a listing reads of each record.
var listFields = []string{"tenant_id", "status", "route", "message_id", "created_at", "updated_at", "sent_at",
	"send_at", "next_attempt_at", "error", "meta"}

// listSource is one partition's index being read: the ids fetched and not
// yet merged, and the bound of the next fetch.
type listSource struct {
	p         int
	key       string
	buf       []string
	max       string // exclusive upper bound of the next fetch ("+" none)
	exhausted bool
}

// List answers one page of messages, newest first. It reads the most
// selective index the filter names (recipient, else tag, else tenant, else
// every message), checks the rest against each record (and, for a
// recipient and a tag together, the tag's index), and stops at f.Limit
// messages or after ListScanMax entries: its cost is bounded whatever the
// number stored. A message present throughout a walk of pages is on
// exactly one page: new ones sort before the cursor.
func (q *Queue) List(ctx context.Context, f ListFilter) (_ ListPage, err error) {
	defer outage.Mark(&err)
	if f.TenantID == "" && (f.To != "" || f.Tag != "") {
		return ListPage{}, ErrListNeedsTenant
	}
	if f.Limit < 1 {
		f.Limit = 50
	}
	upper := "+"
	if !f.Until.IsZero() {
		upper = "(" + idFloor(f.Until.Add(time.Millisecond))
	}
	if f.After != "" {
		u, _, _ := strings.Cut(f.After, "-")
		if b := "(" + u; upper == "+" || b < upper {
			upper = b
		}
	}
	lower := "-"
	if !f.Since.IsZero() {
		lower = "[" + idFloor(f.Since)
	}
	srcs := make([]*listSource, q.opts.Partitions)
	for p := range srcs {
		key := listAllKey(p)
		switch {
		case f.To != "":
			key = listToKey(p, f.TenantID, f.To)
		case f.Tag != "":
			key = listTagKey(p, f.TenantID, f.Tag)
		case f.TenantID != "":
			key = listTenantKey(p, f.TenantID)
		}
		srcs[p] = &listSource{p: p, key: key, max: upper}
	}
	// A filter read from the records (status; a tag beside a recipient)
	// may skip most entries: fetch more at a time, so a page that scans
	// its whole bound costs tens of round trips, not hundreds.
	chunk := f.Limit + 1
	if f.Status != "" || (f.To != "" && f.Tag != "") {
		chunk = max(chunk, listFilterChunk)
	}
	chunk = min(chunk, ListScanMax)
	var page ListPage
	scanned, last := 0, ""
	for len(page.Messages) < f.Limit && scanned < ListScanMax {
		if err := q.refill(ctx, srcs, lower, chunk); err != nil {
			return ListPage{}, err
		}
		cands := merge(srcs, min(chunk, ListScanMax-scanned))
		if len(cands) == 0 {
			return page, nil // every source is done
		}
		found, err := q.check(ctx, f, cands)
		if err != nil {
			return ListPage{}, err
		}
		scanned += len(cands)
		last = cands[len(cands)-1]
		for i, l := range found {
			if l == nil {
				continue
			}
			page.Messages = append(page.Messages, *l)
			if len(page.Messages) == f.Limit {
				page.Next = cands[i]
				return page, nil
			}
		}
	}
	page.Next = last
	return page, nil
}

// refill fetches the next chunk of every source whose buffer is empty.
func (q *Queue) refill(ctx context.Context, srcs []*listSource, lower string, chunk int) error {
	pipe := q.rdb.Pipeline()
	cmds := map[*listSource]*redis.StringSliceCmd{}
	for _, s := range srcs {
		if len(s.buf) == 0 && !s.exhausted {
			cmds[s] = pipe.ZRevRangeByLex(ctx, s.key, &redis.ZRangeBy{Max: s.max, Min: lower, Count: int64(chunk)})
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("queue: list: %w", err)
	}
	for s, c := range cmds {
		s.buf = c.Val()
		s.exhausted = len(s.buf) < chunk
		if len(s.buf) > 0 {
			s.max = "(" + s.buf[len(s.buf)-1]
		}
	}
	return nil
}

// merge takes up to n ids, newest first, across the sources, stopping
// where a source that may hold more has nothing buffered (its next id
// could be newer than any other's).
func merge(srcs []*listSource, n int) []string {
	var out []string
	for len(out) < n {
		var best *listSource
		for _, s := range srcs {
			if len(s.buf) == 0 {
				if !s.exhausted {
					return out
				}
				continue
			}
			if best == nil || ulidPart(s.buf[0]) > ulidPart(best.buf[0]) {
				best = s
			}
		}
		if best == nil {
			return out
		}
		out = append(out, best.buf[0])
		best.buf = best.buf[1:]
	}
	return out
}

func ulidPart(id string) string { u, _, _ := strings.Cut(id, "-"); return u }

// check reads the records of ids and answers, in order, those that match
// f (nil for the others). An id whose record is gone is removed from the
// index it was read from.
func (q *Queue) check(ctx context.Context, f ListFilter, ids []string) ([]*Listed, error) {
	pipe := q.rdb.Pipeline()
	recs := make([]*redis.SliceCmd, len(ids))
	tagged := make([]*redis.FloatCmd, len(ids))
	for i, id := range ids {
		p, ok := partitionOf(id)
		if !ok {
			continue
		}
		recs[i] = pipe.HMGet(ctx, recordKey(p, id), listFields...)
		if f.To != "" && f.Tag != "" {
			tagged[i] = pipe.ZScore(ctx, listTagKey(p, f.TenantID, f.Tag), id)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("queue: list: %w", err)
	}
	out := make([]*Listed, len(ids))
	gone := q.rdb.Pipeline()
	for i, id := range ids {
		if recs[i] == nil {
			continue
		}
		h := map[string]string{}
		for j, v := range recs[i].Val() {
			if s, ok := v.(string); ok {
				h[listFields[j]] = s
			}
		}
		if h["status"] == "" {
			p, _ := partitionOf(id)
			for _, key := range listKeysOf(p, f) {
				gone.ZRem(ctx, key, id)
			}
			continue
		}
		if f.Status != "" && Status(h["status"]) != f.Status {
			continue
		}
		if tagged[i] != nil && tagged[i].Err() != nil {
			continue
		}
		rec, err := decodeRecord(id, h)
		if err != nil {
			continue
		}
		l := &Listed{Record: rec}
		if m := h["meta"]; m != "" {
			var meta struct {
				Tags []string `json:"tags"`
			}
			_ = json.Unmarshal([]byte(m), &meta)
			l.Tags = meta.Tags
		}
		out[i] = l
	}
	if gone.Len() > 0 {
		// Best effort: a failed removal is tried again by the next read.
		_, _ = gone.Exec(ctx)
	}
	return out, nil
}

// listKeysOf are the index sets of partition p a listing under f reads.
func listKeysOf(p int, f ListFilter) []string {
	keys := []string{listAllKey(p)}
	if f.TenantID != "" {
		keys = append(keys, listTenantKey(p, f.TenantID))
	}
	if f.Tag != "" {
		keys = append(keys, listTagKey(p, f.TenantID, f.Tag))
	}
	if f.To != "" {
		keys = append(keys, listToKey(p, f.TenantID, f.To))
	}
	return keys
}

// ValidID reports whether id has the form of a message id (ListFilter's
// After is one).
func ValidID(id string) bool {
	_, ok := partitionOf(id)
	return ok
}
