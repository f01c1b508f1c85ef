// Package ratelimit limits how fast each tenant sends, counting recipients,
// with GCRA (the generic cell rate algorithm, as in go-redis's redis_rate)
// over two windows at once: a per-minute one whose burst is the whole
// minute's allowance, and a per-day one. The state lives in Redis, so every
// replica spends from the same budget, and one Lua script checks and
// consumes all windows in one round trip using Redis's own clock, so
// replicas with skewed clocks agree.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limit is a tenant's allowance in recipients.
type Limit struct {
	PerMinute int
	PerDay    int
}

// Result is the state of the binding window after a check: the window
// that refused, or, when all allowed, the one with the least left.
type Result struct {
	Allowed    bool
	Limit      int           // the binding window's allowance
	Remaining  int           // units that could still go at once
	RetryAfter time.Duration // when refused: until the cost fits
	ResetAfter time.Duration // until the binding window is full again
}

// DeniedError is a refusal; it carries the result for response headers.
type DeniedError struct{ Result Result }

func (e *DeniedError) Error() string {
	return fmt.Sprintf("ratelimit: over the limit of %d; retry in %s", e.Result.Limit, e.Result.RetryAfter.Round(time.Second))
}

// Limiter checks budgets in Redis.
type Limiter struct {
	rdb redis.UniversalClient
}

// New returns a limiter on rdb.
func New(rdb redis.UniversalClient) *Limiter { return &Limiter{rdb: rdb} }

// window is one GCRA budget: limit units per period, of which burst may
// go at once.
type window struct {
	key    string
	limit  int
	period time.Duration
	burst  int
}

// gcraScript keeps each window's theoretical arrival time (TAT, in
// microseconds of Redis's clock). A cost c fits a window of limit n, period
// T and burst b when now >= TAT + c·T/n - b·T/n. Every window is checked
// before any is written, so a refusal by one spends nothing from another.
// KEYS: one per window. ARGV: cost, then limit, period µs, burst per window.
// Returns: allowed, then per window remaining, retry µs, reset µs.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local out = {1}
local new_tats = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i - 1])
  local period = tonumber(ARGV[3 * i])
  local burst = tonumber(ARGV[3 * i + 1])
  local interval = period / limit
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local diff = now - (new_tat - interval * burst)
  new_tats[i] = new_tat
  if diff < 0 then
    out[1] = 0
    local before = math.floor((diff + interval * cost) / interval)
    if before < 0 then before = 0 end
    table.insert(out, before)
    table.insert(out, math.ceil(-diff))
    table.insert(out, math.ceil(tat - now))
  else
    table.insert(out, math.floor(diff / interval))
    table.insert(out, 0)
    table.insert(out, math.ceil(new_tat - now))
  end
end
if out[1] == 1 then
  for i, key in ipairs(KEYS) do
    redis.call('SET', key, string.format('%.0f', new_tats[i]), 'PX', math.ceil((new_tats[i] - now) / 1000) + 1)
  end
end
return out
`)

// allow checks and spends cost from every window, or refuses and spends
// nothing.
func (l *Limiter) allow(ctx context.Context, cost int, ws ...window) (Result, error) {
	keys := make([]string, len(ws))
	args := []any{cost}
	for i, w := range ws {
		if w.limit < 1 || w.burst < 1 {
			return Result{}, fmt.Errorf("ratelimit: %s: limit and burst must be positive", w.key)
		}
		keys[i] = w.key
		args = append(args, w.limit, w.period.Microseconds(), w.burst)
	}
	res, err := gcraScript.Run(ctx, l.rdb, keys, args...).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: %w", err)
	}
	allowed := res[0] == 1
	var r Result
	for i, w := range ws {
		remaining, retry, reset := res[1+3*i], res[2+3*i], res[3+3*i]
		wr := Result{Allowed: allowed, Limit: w.limit, Remaining: int(remaining),
			RetryAfter: time.Duration(retry) * time.Microsecond, ResetAfter: time.Duration(reset) * time.Microsecond}
		// The binding window: when refused, the one that makes the caller
		// wait longest; when allowed, the one with the least left.
		if i == 0 || (!allowed && wr.RetryAfter > r.RetryAfter) || (allowed && wr.Remaining < r.Remaining) {
			r = wr
		}
	}
	if !allowed {
		r.Remaining = 0
		return r, &DeniedError{Result: r}
	}
	return r, nil
}

// Allow spends cost recipients from the tenant's per-minute and per-day
// budgets, or refuses without spending anything.
func (l *Limiter) Allow(ctx context.Context, tenantID string, lim Limit, cost int) (Result, error) {
	// Both keys carry the tenant's hash tag, so the script runs on Redis
	// Cluster.
	return l.allow(ctx, cost,
		window{key: "outbound:rl:{" + tenantID + "}:minute", limit: lim.PerMinute, period: time.Minute, burst: lim.PerMinute},
		window{key: "outbound:rl:{" + tenantID + "}:day", limit: lim.PerDay, period: 24 * time.Hour, burst: lim.PerDay})
}

// Pace spaces sends to one SMTP account evenly at perMinute, shared by
// every replica: a burst the API accepted still reaches the provider at a
// pace it tolerates. key identifies the account.
func (l *Limiter) Pace(ctx context.Context, key string, perMinute int) (Result, error) {
	return l.allow(ctx, 1, window{key: "outbound:pace:{" + key + "}", limit: perMinute, period: time.Minute, burst: 1})
}

// Seconds rounds a duration up to whole seconds, as HTTP headers want.
func Seconds(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }
