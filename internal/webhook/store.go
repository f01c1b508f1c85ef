// Package webhook tells callers what happened to their messages without
// polling: signed JSON POSTs for each event the queue writes (EventTypes:
// message.sent, message.failed, ...), fanned out from the queue's event
// streams into a durable delivery queue in Redis, retried with backoff for
// up to a day.
package webhook

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/cache"
	"github.com/outbound-mail/outbound/internal/outage"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/redisclock"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/validation"
)

// EventTypes are the event types a webhook can ask for: those the queue
// writes (queue.EventTypes).
var EventTypes = queue.EventTypes()

// ErrNotFound means no webhook has that name.
var ErrNotFound = errors.New("webhook: no such webhook")

// Hook is one registered receiver.
type Hook struct {
	Name     string
	URL      string
	Events   []string
	TenantID string // only this tenant's messages; "" for all
	Secret   secret.String
	// EveryDeferral sends message.deferred on each retry; by default only
	// a message's first deferral is reported.
	EveryDeferral bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Input is a webhook as submitted.
type Input struct {
	URL           string        `json:"url"`
	Events        []string      `json:"events"`
	TenantID      string        `json:"tenant_id,omitempty"`
	Secret        secret.String `json:"secret,omitzero"`
	EveryDeferral bool          `json:"every_deferral,omitempty"`
}

var (
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	tenantPattern = namePattern
)

// Build validates in as the webhook name, keeping stored's secret when in
// has none; a new webhook without one gets a generated secret (generated
// reports that, so the caller can show it once).
func Build(name string, in Input, stored *Hook) (h Hook, generated bool, err error) {
	var errs validation.Error
	if !namePattern.MatchString(name) {
		errs.Add("name", "invalid_name", "1-64 letters, digits, '.', '_' or '-'")
	}
	u, perr := url.Parse(in.URL)
	switch {
	case in.URL == "":
		errs.Add("url", "required", "where to POST events")
	case perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		validation.HasControl(in.URL) || len(in.URL) > 2048:
		errs.Add("url", "invalid_url", "an https:// URL without credentials")
	case u.Scheme != "https":
		// Events carry message ids, tenants and metadata, and anyone on
		// the path could read or replay them: TLS only, on every network.
		errs.Add("url", "https_required", "events are sent over TLS only: use an https:// URL")
	}
	if len(in.Events) == 0 {
		errs.Add("events", "required", "at least one of "+fmt.Sprint(EventTypes))
	}
	for i, e := range in.Events {
		if !slices.Contains(EventTypes, e) {
			errs.Add(fmt.Sprintf("events[%d]", i), "unknown_event", "one of "+fmt.Sprint(EventTypes))
		}
	}
	if in.TenantID != "" && !tenantPattern.MatchString(in.TenantID) {
		errs.Add("tenant_id", "invalid_tenant_id", "not a tenant id")
	}
	errs.Text("secret", in.Secret.Reveal(), 256)
	if err := errs.Err(); err != nil {
		return Hook{}, false, err
	}
	h = Hook{Name: name, URL: in.URL, Events: slices.Compact(slices.Sorted(slices.Values(in.Events))),
		TenantID: in.TenantID, Secret: in.Secret, EveryDeferral: in.EveryDeferral}
	if stored != nil {
		h.CreatedAt = stored.CreatedAt
		if h.Secret.IsZero() {
			h.Secret = stored.Secret
		}
	}
	if h.Secret.IsZero() {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		h.Secret, generated = secret.New("whsec_"+base64.RawURLEncoding.EncodeToString(b)), true
	}
	return h, generated, nil
}

// Store keeps webhooks in one Redis hash.
type Store struct {
	rdb    redis.UniversalClient
	sealer *seal.Sealer
	now    func() time.Time
	cache  *cache.Cache[[]Hook] // nil: List reads Redis every time
}

// UseCache makes List answer from memory for up to ttl, dropping the list
// the moment any replica writes a webhook. Every message's outcome asks
// whether a webhook listens; webhooks change rarely.
func (s *Store) UseCache(ttl time.Duration) (stop func() error) {
	s.cache = cache.New[[]Hook](s.rdb, "outbound:webhooks-changed", ttl)
	return s.cache.Close
}

// changed tells every replica that the webhooks changed. A lost notice only
// delays the change by the cache's TTL.
func (s *Store) changed(ctx context.Context) {
	if s.cache != nil {
		_ = s.cache.Invalidate(ctx, "all")
	}
}

// NewStore returns a store; secrets are sealed with sealer.
func NewStore(rdb redis.UniversalClient, sealer *seal.Sealer) *Store {
	return &Store{rdb: rdb, sealer: sealer, now: time.Now}
}

// Every webhook key carries the {wh} hash tag.
const (
	hooksKey = "outbound:{wh}:hooks"
	dueKey   = "outbound:{wh}:due"
)

func jobKey(id string) string { return "outbound:{wh}:job:" + id }

// logKey is a webhook's delivery log, a stream whose ids are the cursors
// of its pages.
func logKey(name string) string { return "outbound:{wh}:deliveries:" + name }

// listLogKey is where versions before the stream kept the log, as a list
// (newest first); the first read or write of the log moves it over.
func listLogKey(name string) string { return "outbound:{wh}:log:" + name }

type stored struct {
	URL           string    `json:"url"`
	Events        []string  `json:"events"`
	TenantID      string    `json:"tenant_id,omitempty"`
	SecretSealed  string    `json:"secret_sealed"`
	EveryDeferral bool      `json:"every_deferral,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func secretAD(name string) []byte { return []byte("outbound/webhook/" + name + "/secret") }

// Put stores h, creating or replacing it.
func (s *Store) Put(ctx context.Context, h Hook) (_ Hook, err error) {
	defer outage.Mark(&err)
	now := s.now().UTC().Truncate(time.Millisecond)
	if h.CreatedAt.IsZero() {
		h.CreatedAt = now
	}
	h.UpdatedAt = now
	sealed, err := s.sealer.Seal([]byte(h.Secret.Reveal()), secretAD(h.Name))
	if err != nil {
		return Hook{}, fmt.Errorf("webhook: %w", err)
	}
	b, _ := json.Marshal(stored{URL: h.URL, Events: h.Events, TenantID: h.TenantID, SecretSealed: sealed,
		EveryDeferral: h.EveryDeferral, CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt})
	if err := s.rdb.HSet(ctx, hooksKey, h.Name, b).Err(); err != nil {
		return Hook{}, fmt.Errorf("webhook: put %s: %w", h.Name, err)
	}
	s.changed(ctx)
	return h, nil
}

// Get returns one webhook.
func (s *Store) Get(ctx context.Context, name string) (_ Hook, err error) {
	defer outage.Mark(&err)
	v, err := s.rdb.HGet(ctx, hooksKey, name).Result()
	if errors.Is(err, redis.Nil) {
		return Hook{}, ErrNotFound
	}
	if err != nil {
		return Hook{}, fmt.Errorf("webhook: get %s: %w", name, err)
	}
	return s.decode(name, v)
}

// deleteScript removes a webhook and its delivery log in one step, so no
// log outlives its webhook to be shown to a new one of the same name.
// KEYS: hooks, log, list log (one {wh} slot). ARGV: name. Returns 0 when
// none was.
var deleteScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
return 1
`)

// Delete removes a webhook and its delivery log; its pending deliveries
// are dropped when due.
func (s *Store) Delete(ctx context.Context, name string) (err error) {
	defer outage.Mark(&err)
	n, err := deleteScript.Run(ctx, s.rdb, []string{hooksKey, logKey(name), listLogKey(name)}, name).Int()
	if err != nil {
		return fmt.Errorf("webhook: delete %s: %w", name, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	s.changed(ctx)
	return nil
}

// Listens reports whether any webhook wants events of this type for the
// tenant. When none does, the event need not be recorded at all: a webhook
// hears of what happens after it is saved.
func (s *Store) Listens(ctx context.Context, tenantID, eventType string) (_ bool, err error) {
	defer outage.Mark(&err)
	hooks, err := s.List(ctx)
	if err != nil {
		return false, err
	}
	for _, h := range hooks {
		if h.hears(eventType, tenantID) {
			return true, nil
		}
	}
	return false, nil
}

// hears reports whether h asked for events of this type from this tenant.
func (h Hook) hears(eventType, tenantID string) bool {
	return slices.Contains(h.Events, eventType) && (h.TenantID == "" || h.TenantID == tenantID)
}

// List returns every webhook, by name. The slice is shared with the cache:
// callers do not change it.
func (s *Store) List(ctx context.Context) (_ []Hook, err error) {
	defer outage.Mark(&err)
	if s.cache == nil {
		return s.list(ctx)
	}
	return s.cache.Get(ctx, "all", s.list)
}

func (s *Store) list(ctx context.Context) ([]Hook, error) {
	all, err := s.rdb.HGetAll(ctx, hooksKey).Result()
	if err != nil {
		return nil, fmt.Errorf("webhook: list: %w", err)
	}
	out := make([]Hook, 0, len(all))
	for name, v := range all {
		h, err := s.decode(name, v)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Store) decode(name, v string) (Hook, error) {
	var st stored
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return Hook{}, fmt.Errorf("webhook: stored %s: %w", name, err)
	}
	plain, err := s.sealer.Open(st.SecretSealed, secretAD(name))
	if err != nil {
		return Hook{}, fmt.Errorf("webhook: stored %s: secret: %w", name, err)
	}
	return Hook{Name: name, URL: st.URL, Events: st.Events, TenantID: st.TenantID, Secret: secret.New(string(plain)),
		EveryDeferral: st.EveryDeferral, CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt}, nil
}

// Delivery is one attempt to deliver an event, as listed by the API.
type Delivery struct {
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	MessageID  string    `json:"message_id"`
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	Delivered  bool      `json:"delivered"`
	// GaveUp is set on the last attempt of an event not delivered within
	// the retry window.
	GaveUp bool `json:"gave_up,omitempty"`
}

// ErrBadCursor means a page's cursor is not one Deliveries handed out.
var ErrBadCursor = errors.New("webhook: not a cursor of the delivery log")

// validCursor reports whether c is a stream id XREVRANGE can start before:
// two unsigned 64-bit numbers, not 0-0 (nothing is before it).
func validCursor(c string) bool {
	ms, seq, ok := strings.Cut(c, "-")
	if !ok {
		return false
	}
	a, errA := strconv.ParseUint(ms, 10, 64)
	b, errB := strconv.ParseUint(seq, 10, 64)
	return errA == nil && errB == nil && (a > 0 || b > 0)
}

// Bounds of each webhook's delivery log, applied on every write.
const (
	logSize = 1000
	logAge  = 7 * 24 * time.Hour
)

// moveListLog is Lua that moves a log kept as a list (KEYS[3], newest
// first) into the stream (KEYS[2]), oldest first, so the order holds.
const moveListLog = `
if redis.call('EXISTS', KEYS[3]) == 1 then
  local old = redis.call('LRANGE', KEYS[3], 0, -1)
  for i = #old, 1, -1 do redis.call('XADD', KEYS[2], '*', 'd', old[i]) end
  redis.call('DEL', KEYS[3])
end
`

// deliveriesScript reads one page of a log, newest first, before the
// cursor ARGV[1] ("" for the newest). KEYS: hooks, log, list log.
// ARGV: cursor, limit.
var deliveriesScript = redis.NewScript(moveListLog + `
local max = '+'
if ARGV[1] ~= '' then max = '(' .. ARGV[1] end
return redis.call('XREVRANGE', KEYS[2], max, '-', 'COUNT', tonumber(ARGV[2]))
`)

// Deliveries returns up to limit of the webhook's attempts, newest first,
// older than the cursor after ("" for the newest), and the cursor of the
// next page ("" when this one is the last).
func (s *Store) Deliveries(ctx context.Context, name, after string, limit int) (_ []Delivery, _ string, err error) {
	defer outage.Mark(&err)
	if after != "" && !validCursor(after) {
		return nil, "", ErrBadCursor
	}
	reply, err := deliveriesScript.Run(ctx, s.rdb, []string{hooksKey, logKey(name), listLogKey(name)}, after, limit).Slice()
	if err != nil {
		return nil, "", fmt.Errorf("webhook: deliveries of %s: %w", name, err)
	}
	out := make([]Delivery, 0, len(reply))
	last := ""
	for _, r := range reply {
		id, v := logEntry(r)
		var d Delivery
		if json.Unmarshal([]byte(v), &d) == nil {
			out = append(out, d)
		}
		last = id
	}
	if len(reply) < limit {
		last = ""
	}
	return out, last, nil
}

// logEntry is the id and the delivery JSON of one stream entry as a
// script returns it: {id, {"d", json}}.
func logEntry(r any) (id, v string) {
	id, fields := logFields(r)
	return id, fields["d"]
}

// logFields is the id and the fields of one stream entry as a script
// returns it: {id, {name, value, ...}}. An entry holds the delivery (d)
// and, since retries, the body it sent (b).
func logFields(r any) (id string, fields map[string]string) {
	e, _ := r.([]any)
	if len(e) != 2 {
		return "", nil
	}
	id, _ = e[0].(string)
	list, _ := e[1].([]any)
	fields = make(map[string]string, len(list)/2)
	for i := 0; i+1 < len(list); i += 2 {
		k, _ := list[i].(string)
		v, _ := list[i+1].(string)
		fields[k] = v
	}
	return id, fields
}

// recordScript appends to a webhook's log only while the webhook exists:
// an attempt still in flight when its webhook is deleted must not write
// the log back. The log keeps its newest logSize entries of the last
// logAge. Each entry keeps the body sent, which RetryDelivery sends
// again. KEYS: hooks, log, list log. ARGV: name, entry, log size, log age
// ms, body (optional).
var recordScript = redis.NewScript(redisclock.Lua + moveListLog + `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[5] then
  redis.call('XADD', KEYS[2], 'MAXLEN', tonumber(ARGV[3]), '*', 'd', ARGV[2], 'b', ARGV[5])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', tonumber(ARGV[3]), '*', 'd', ARGV[2])
end
redis.call('XTRIM', KEYS[2], 'MINID', redis_now_ms() - tonumber(ARGV[4]))
return 1
`)

func (s *Store) record(ctx context.Context, name string, d Delivery) error {
	return s.recordSent(ctx, name, d, nil)
}

// recordSent logs d with the body its POST sent.
func (s *Store) recordSent(ctx context.Context, name string, d Delivery, body []byte) error {
	b, _ := json.Marshal(d)
	return recordScript.Run(ctx, s.rdb, []string{hooksKey, logKey(name), listLogKey(name)}, name, b, logSize,
		logAge.Milliseconds(), string(body)).Err()
}

// ErrNoDelivery means the webhook's log holds no attempt of that event
// (never made, or trimmed: the log keeps the last 1000 attempts of 7
// days), or none with the body sent (one logged before retries were).
var ErrNoDelivery = errors.New("webhook: no such delivery in the log")

// RetryDelivery sends an event to one webhook again: the newest logged
// attempt of the event (eventID, as in the log) gives the body, which is
// queued for that webhook only, due now, with a fresh retry window, and
// the attempt is returned. While a delivery of the event to the webhook is
// still queued (being retried, or retried again already), nothing new is
// queued: a repeated call sends once. Once that is done, another call
// sends the event again; receivers tell repeats by the event's id.
func (s *Store) RetryDelivery(ctx context.Context, name, eventID string) (_ Delivery, err error) {
	defer outage.Mark(&err)
	if _, err := s.Get(ctx, name); err != nil {
		return Delivery{}, err
	}
	reply, err := deliveriesScript.Run(ctx, s.rdb, []string{hooksKey, logKey(name), listLogKey(name)}, "", logSize).Slice()
	if err != nil {
		return Delivery{}, fmt.Errorf("webhook: retry %s: %w", eventID, err)
	}
	for _, r := range reply {
		_, fields := logFields(r)
		var d Delivery
		if json.Unmarshal([]byte(fields["d"]), &d) != nil || d.EventID != eventID {
			continue
		}
		if fields["b"] == "" {
			break
		}
		jobID := name + ":" + eventID
		now := time.Now().UnixMilli()
		err := enqueueScript.Run(ctx, s.rdb, []string{dueKey, jobKey(jobID)}, jobID, now,
			"hook", name, "body", fields["b"], "event_id", eventID, "type", d.Type, "message_id", d.MessageID,
			"created_at", now, "attempts", d.Attempt).Err()
		if err != nil {
			return Delivery{}, fmt.Errorf("webhook: retry %s: %w", eventID, err)
		}
		return d, nil
	}
	return Delivery{}, ErrNoDelivery
}
