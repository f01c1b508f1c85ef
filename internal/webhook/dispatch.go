package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/redisclock"
	"github.com/outbound-mail/outbound/internal/retry"
)

// Events is the queue's event streams as the dispatcher reads them.
type Events interface {
	Partitions() int
	ReadEvents(ctx context.Context, p int, consumer string, count int, block time.Duration) ([]queue.Event, error)
	ReclaimEvents(ctx context.Context, p int, consumer string, minIdle time.Duration, count int) ([]queue.Event, error)
	AckEvents(ctx context.Context, p int, streamIDs ...string) error
	TrimEvents(ctx context.Context, p int, maxLen int64) (trimmed, dropped int64, err error)
}

// DropCounter counts events dropped before delivery (metrics.Metrics).
type DropCounter interface {
	EventsDropped(n int64)
}

// Options tune the dispatcher; New fills defaults.
type Options struct {
	Consumer  string
	RetryBase time.Duration // first retry delay (10s), doubling, capped at an hour
	MaxAge    time.Duration // give up after this (24h)
	Timeout   time.Duration // one POST (10s)
	Senders   int           // POSTs in flight (8)
	// EventsMax caps each partition's event stream (1,000,000). Events
	// are trimmed once acknowledged; only past this many waiting are the
	// oldest dropped unread, counted in Dropped and logged.
	EventsMax int64
	Dropped   DropCounter // may be nil
}

// Dispatcher turns message events into signed POSTs.
type Dispatcher struct {
	opts   Options
	store  *Store
	events Events
	rdb    redis.UniversalClient
	client *http.Client
	log    *slog.Logger

	stop      context.CancelFunc
	wg        sync.WaitGroup
	inflight  chan struct{}
	trimEvery time.Duration
}

// NewDispatcher returns a dispatcher; client makes the POSTs (through the
// egress guard: webhook URLs are user input).
func NewDispatcher(opts Options, store *Store, events Events, rdb redis.UniversalClient, client *http.Client, log *slog.Logger) *Dispatcher {
	if opts.RetryBase <= 0 {
		opts.RetryBase = 10 * time.Second
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 24 * time.Hour
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Senders <= 0 {
		opts.Senders = 8
	}
	if opts.EventsMax <= 0 {
		opts.EventsMax = 1_000_000
	}
	return &Dispatcher{opts: opts, store: store, events: events, rdb: rdb, client: client, log: log,
		inflight: make(chan struct{}, opts.Senders), trimEvery: 10 * time.Second}
}

// Start runs the fan-out and the senders.
func (d *Dispatcher) Start() {
	ctx, stop := context.WithCancel(context.Background())
	d.stop = stop
	for p := range d.events.Partitions() {
		d.wg.Go(func() { d.fanOut(ctx, p) })
	}
	d.wg.Go(func() { d.reclaim(ctx) })
	d.wg.Go(func() { d.trim(ctx) })
	d.wg.Go(func() { d.send(ctx) })
}

// Shutdown stops and waits for POSTs in flight (bounded by their timeout).
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	if d.stop == nil {
		return nil
	}
	d.stop()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Dispatcher) fanOut(ctx context.Context, p int) {
	failing := false
	for ctx.Err() == nil {
		events, err := d.events.ReadEvents(ctx, p, d.opts.Consumer, 100, queue.ReadWait)
		if err == nil {
			err = d.handle(ctx, p, events)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				d.log.Warn("webhook events failing; retrying", "partition", p, "error", err)
				failing = true
			}
			retry.Sleep(ctx, time.Second)
			continue
		}
		failing = false
	}
}

// reclaim picks up events a dead process read but did not fan out.
func (d *Dispatcher) reclaim(ctx context.Context) {
	for retry.Sleep(ctx, 15*time.Second) {
		for p := range d.events.Partitions() {
			events, err := d.events.ReclaimEvents(ctx, p, d.opts.Consumer, time.Minute, 100)
			if err == nil {
				err = d.handle(ctx, p, events)
			}
			if err != nil && ctx.Err() == nil {
				d.log.Warn("reclaim webhook events", "partition", p, "error", err)
			}
		}
	}
}

// trim keeps the event streams to what webhooks have not had yet (see
// queue.TrimEvents), and to EventsMax each whatever happens.
func (d *Dispatcher) trim(ctx context.Context) {
	for retry.Sleep(ctx, d.trimEvery) {
		for p := range d.events.Partitions() {
			_, dropped, err := d.events.TrimEvents(ctx, p, d.opts.EventsMax)
			switch {
			case err != nil && ctx.Err() == nil:
				d.log.Warn("trim webhook events", "partition", p, "error", err)
			case dropped > 0:
				if d.opts.Dropped != nil {
					d.opts.Dropped.EventsDropped(dropped)
				}
				d.log.Warn("webhook events dropped unread: the event stream was over its cap", "partition", p,
					"count", dropped, "events_max", d.opts.EventsMax)
			}
		}
	}
}

// body is what a receiver gets.
type body struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Data      data      `json:"data"`
}

type data struct {
	MessageID        string            `json:"message_id"`
	TenantID         string            `json:"tenant_id"`
	Status           string            `json:"status"`
	Route            string            `json:"route"`
	Tags             []string          `json:"tags,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	Attempt          json.RawMessage   `json:"attempt,omitempty"`
	Recipients       json.RawMessage   `json:"recipients,omitempty"`
	MessageCreatedAt time.Time         `json:"message_created_at"`
}

// enqueueScript creates a delivery job once: a job id is the webhook and
// the event, so an event fanned out twice (after a crash) is sent once.
// KEYS: due, job. ARGV: job id, due ms, field pairs...
var enqueueScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
`)

// handle fans events out into jobs, then acknowledges them.
func (d *Dispatcher) handle(ctx context.Context, p int, events []queue.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := d.handleEvents(ctx, p, events); err != nil {
		return err
	}
	ids := make([]string, 0, len(events))
	for _, ev := range events {
		ids = append(ids, ev.StreamID)
	}
	return d.events.AckEvents(ctx, p, ids...)
}

// handleEvents creates the delivery jobs of events.
func (d *Dispatcher) handleEvents(ctx context.Context, p int, events []queue.Event) error {
	hooks, err := d.store.List(ctx)
	if err != nil {
		return err
	}
	for _, ev := range events {
		b, eventID := render(p, ev)
		for _, h := range hooks {
			if !wants(h, ev) {
				continue
			}
			jobID := h.Name + ":" + eventID
			err := enqueueScript.Run(ctx, d.rdb, []string{dueKey, jobKey(jobID)}, jobID, time.Now().UnixMilli(),
				"hook", h.Name, "body", b, "event_id", eventID, "type", ev.Type, "message_id", ev.MessageID,
				"created_at", time.Now().UnixMilli(), "attempts", 0).Err()
			if err != nil {
				return fmt.Errorf("webhook: enqueue: %w", err)
			}
		}
	}
	return nil
}

func wants(h Hook, ev queue.Event) bool {
	if !h.hears(ev.Type, ev.TenantID) {
		return false
	}
	return queue.EventStatus(ev.Type) != queue.StatusDeferred || ev.First || h.EveryDeferral
}

// render builds an event's body once, so every retry sends the same bytes.
func render(p int, ev queue.Event) ([]byte, string) {
	eventID := "evt_" + strconv.Itoa(p) + "_" + ev.StreamID
	var meta struct {
		Tags     []string          `json:"tags"`
		Metadata map[string]string `json:"metadata"`
	}
	_ = json.Unmarshal(ev.Meta, &meta)
	b := body{ID: eventID, Type: ev.Type, CreatedAt: ev.At, Data: data{MessageID: ev.MessageID, TenantID: ev.TenantID,
		Status: string(queue.EventStatus(ev.Type)), Route: ev.Route, Tags: meta.Tags, Metadata: meta.Metadata,
		MessageCreatedAt: ev.CreatedAt}}
	if len(ev.Attempt) > 0 {
		b.Data.Attempt = ev.Attempt
	}
	if len(ev.Recipients) > 0 {
		b.Data.Recipients = ev.Recipients
	}
	out, _ := json.Marshal(b)
	return out, eventID
}

// leaseScript takes due jobs and pushes their due time a lease ahead, so a
// sender that dies leaves them to be taken again. KEYS: due. ARGV: lease
// ms, limit.
var leaseScript = redis.NewScript(redisclock.Lua + `
local now = redis_now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id) end
return ids
`)

func (d *Dispatcher) send(ctx context.Context) {
	lease := d.opts.Timeout + 30*time.Second
	every := min(max(d.opts.RetryBase/4, 20*time.Millisecond), 250*time.Millisecond)
	for retry.Sleep(ctx, every) {
		ids, err := leaseScript.Run(ctx, d.rdb, []string{dueKey}, lease.Milliseconds(), d.opts.Senders*4).StringSlice()
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("webhook queue", "error", err)
			}
			continue
		}
		for _, id := range ids {
			select {
			case d.inflight <- struct{}{}:
			case <-ctx.Done():
				return
			}
			d.wg.Go(func() {
				defer func() { <-d.inflight }()
				d.deliver(context.WithoutCancel(ctx), id)
			})
		}
	}
}

// deliver POSTs one job and records the attempt.
func (d *Dispatcher) deliver(ctx context.Context, id string) {
	job, err := d.rdb.HGetAll(ctx, jobKey(id)).Result()
	if err != nil || len(job) == 0 {
		d.rdb.ZRem(ctx, dueKey, id)
		return
	}
	hooks, err := d.store.List(ctx)
	if err != nil {
		return // leased: retried when the lease ends
	}
	i := slices.IndexFunc(hooks, func(h Hook) bool { return h.Name == job["hook"] })
	if i < 0 { // the webhook was deleted
		d.finish(ctx, id)
		return
	}
	h := hooks[i]
	attempt, _ := strconv.Atoi(job["attempts"])
	attempt++
	created, _ := strconv.ParseInt(job["created_at"], 10, 64)
	rec := Delivery{EventID: job["event_id"], Type: job["type"], MessageID: job["message_id"], Attempt: attempt,
		At: time.Now().UTC()}

	rec.StatusCode, err = d.post(ctx, h, []byte(job["body"]))
	switch {
	case err == nil && rec.StatusCode >= 200 && rec.StatusCode < 300:
		rec.Delivered = true
		d.finish(ctx, id)
	default:
		if err != nil {
			rec.Error = err.Error()
		} else {
			rec.Error = "receiver answered " + strconv.Itoa(rec.StatusCode)
		}
		if time.Since(time.UnixMilli(created)) > d.opts.MaxAge {
			rec.GaveUp = true
			d.finish(ctx, id)
		} else {
			pipe := d.rdb.TxPipeline()
			pipe.HSet(ctx, jobKey(id), "attempts", attempt)
			pipe.ZAdd(ctx, dueKey, redis.Z{Score: float64(time.Now().Add(retry.Delay(d.opts.RetryBase, attempt)).UnixMilli()), Member: id})
			if _, err := pipe.Exec(ctx); err != nil {
				d.log.Warn("webhook retry", "hook", h.Name, "error", err)
			}
		}
	}
	if err := d.store.recordSent(ctx, h.Name, rec, []byte(job["body"])); err != nil {
		d.log.Warn("webhook log", "hook", h.Name, "error", err)
	}
	d.log.Info("webhook delivery", "hook", h.Name, "event_id", rec.EventID, "message_id", rec.MessageID,
		"attempt", attempt, "status_code", rec.StatusCode, "delivered", rec.Delivered, "error", rec.Error)
}

func (d *Dispatcher) finish(ctx context.Context, id string) {
	pipe := d.rdb.TxPipeline()
	pipe.ZRem(ctx, dueKey, id)
	pipe.Del(ctx, jobKey(id))
	_, _ = pipe.Exec(ctx)
}

func (d *Dispatcher) post(ctx context.Context, h Hook, b []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(b))
	if err != nil {
		return 0, redactURL(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Outbound-Webhooks/1")
	req.Header.Set(SignatureHeader, Sign(h.Secret.Reveal(), time.Now(), b))
	res, err := d.client.Do(req)
	if err != nil {
		return 0, redactURL(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, nil
}

// redactURL cuts the URL that net/http puts in its errors (*url.Error,
// `Post "https://...": ...`) down to scheme, host and path. A receiver's
// token often lives in the query, and the error text is logged and listed
// in the webhook's deliveries.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = withoutQuery(ue.URL)
	}
	return err
}

// withoutQuery is raw's scheme, host and path, without user info, query
// or fragment.
func withoutQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}
