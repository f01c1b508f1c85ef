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
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redisclock"
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

// Window is one GCRA budget: Limit units per Period, of which Burst may go
// at once, kept at Key.
type Window struct {
	Key    string
	Limit  int
	Period time.Duration
	Burst  int
}

// TenantWindows are a tenant's per-minute and per-day windows (burst: the
// whole allowance), keyed under tag, a hash tag such as "{acme}": scripts
// that check them beside other keys keep them in those keys' slot.
func TenantWindows(tag, tenantID string, lim Limit) []Window {
	base := "outbound:rl:" + tag + ":" + tenantID
	return []Window{
		{Key: base + ":minute", Limit: lim.PerMinute, Period: time.Minute, Burst: lim.PerMinute},
		{Key: base + ":day", Limit: lim.PerDay, Period: 24 * time.Hour, Burst: lim.PerDay},
	}
}

// ScheduleWindow is a tenant's allowance for scheduling mail (send_at in
// the future): its per-day limit, spent when the message is accepted. The
// message spends its sending windows only when it falls due (see Charge);
// this one keeps the mail a tenant can hold in Redis for later bounded, as
// the sending windows did when they were spent at accept.
func ScheduleWindow(tag, tenantID string, lim Limit) Window {
	return Window{Key: "outbound:rl:" + tag + ":" + tenantID + ":schedule", Limit: lim.PerDay, Period: 24 * time.Hour,
		Burst: lim.PerDay}
}

// Charge is a spend of cost from ws, written down to be made later by a
// script (gcra_charge), as one string: the cost, then each window's key,
// limit, period µs and burst, separated by spaces (keys hold none: tenant
// ids cannot).
func Charge(ws []Window, cost int) (string, error) {
	keys, args, err := Args(ws)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(cost))
	for i, k := range keys {
		fmt.Fprintf(&b, " %s %v %v %v", k, args[3*i], args[3*i+1], args[3*i+2])
	}
	return b.String(), nil
}

// Lua defines gcra_check, gcra_commit and gcra_flush for scripts that
// spend a budget beside other work (the accept script spends it and queues
// in one step), and gcra_reserve and gcra_charge for the mover, which
// spends the budget of scheduled mail when it falls due.
//
// Each window keeps its theoretical arrival time (TAT, in microseconds of
// Redis's clock). A cost c fits a window of limit n, period T and burst b
// when now >= TAT + c·T/n - b·T/n. Every window is checked before any is
// written, so a refusal by one spends nothing from another.
//
// gcra_reserve(keys, args, first, cost) spends cost from every window as
// of the earliest moment all of them can take it, and returns that moment
// (µs; now when they can at once). A message sent then respects every
// window, and the next reservation queues behind it: scheduled messages
// due together leave at the windows' pace, each reserved once, rather
// than all waking at the first free moment and all but one waiting
// again. gcra_charge(spec) does the same for a spec written by Charge.
//
// gcra_check(keys, args, first, cost): args[first..] hold limit,
// period µs, burst per key. It returns whether all allow, a flat list of
// remaining, retry µs, reset µs per window, and the new TATs that
// gcra_commit(keys, tats) records when the caller goes ahead.
//
// One script call may spend from the same windows many times (a batch of
// one tenant's messages), so it reads Redis's clock once and each window
// once, keeps the TATs in a table, and gcra_flush writes each window it
// changed once, at the end. A script is atomic, so this is the same as
// reading and writing every time, for a fifth of the calls into Redis.
const Lua = redisclock.Lua + `
local gcra_clock, gcra_tats, gcra_changed = nil, {}, {}
local function gcra_now()
  if not gcra_clock then gcra_clock = redis_now_us() end
  return gcra_clock
end
local function gcra_tat(key)
  local tat = gcra_tats[key]
  if not tat then
    tat = tonumber(redis.call('GET', key) or '0')
    gcra_tats[key] = tat
  end
  return tat
end
local function gcra_check(keys, args, first, cost)
  local now, allowed, out, tats = gcra_now(), true, {}, {}
  for i, key in ipairs(keys) do
    local o = first + 3 * (i - 1)
    local limit, period, burst = tonumber(args[o]), tonumber(args[o + 1]), tonumber(args[o + 2])
    local interval = period / limit
    local tat = gcra_tat(key)
    if tat < now then tat = now end
    local new_tat = tat + interval * cost
    local diff = now - (new_tat - interval * burst)
    tats[i] = new_tat
    if diff < 0 then
      allowed = false
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
  return allowed, out, tats
end
local function gcra_commit(keys, tats)
  for i, key in ipairs(keys) do
    gcra_tats[key] = tats[i]
    gcra_changed[key] = true
  end
end
local function gcra_reserve(keys, args, first, cost)
  local now = gcra_now()
  local at, tats, intervals = now, {}, {}
  for i, key in ipairs(keys) do
    local o = first + 3 * (i - 1)
    local limit, period, burst = tonumber(args[o]), tonumber(args[o + 1]), tonumber(args[o + 2])
    intervals[i] = period / limit
    tats[i] = gcra_tat(key)
    if tats[i] < now then tats[i] = now end
    local fits = tats[i] + intervals[i] * (cost - burst)
    if fits > at then at = fits end
  end
  for i, key in ipairs(keys) do
    local tat = tats[i]
    if tat < at then tat = at end
    gcra_tats[key] = tat + intervals[i] * cost
    gcra_changed[key] = true
  end
  return at
end
local function gcra_charge(spec)
  local f = {}
  for w in string.gmatch(spec, '%S+') do f[#f + 1] = w end
  local keys, args = {}, {}
  for i = 2, #f - 3, 4 do
    keys[#keys + 1] = f[i]
    for j = 1, 3 do args[#args + 1] = f[i + j] end
  end
  return gcra_reserve(keys, args, 1, tonumber(f[1]))
end
local function gcra_flush()
  for key in pairs(gcra_changed) do
    local tat = gcra_tats[key]
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - gcra_clock) / 1000) + 1)
  end
end
`

// gcraScript checks and spends windows alone. KEYS: one per window.
// ARGV: cost, then limit, period µs, burst per window. Returns allowed,
// then per window remaining, retry µs, reset µs.
var gcraScript = redis.NewScript(Lua + `
local ok, out, tats = gcra_check(KEYS, ARGV, 2, tonumber(ARGV[1]))
if ok then
  gcra_commit(KEYS, tats)
  gcra_flush()
end
local res = {0}
if ok then res[1] = 1 end
for _, v in ipairs(out) do table.insert(res, v) end
return res
`)

// Args are the windows' keys and their ARGV triples, checked.
func Args(ws []Window) (keys []string, args []any, err error) {
	for _, w := range ws {
		if w.Limit < 1 || w.Burst < 1 {
			return nil, nil, fmt.Errorf("ratelimit: %s: limit and burst must be positive", w.Key)
		}
		keys = append(keys, w.Key)
		args = append(args, w.Limit, w.Period.Microseconds(), w.Burst)
	}
	return keys, args, nil
}

// Decode turns the script's allowed flag and per-window numbers into the
// binding window's Result: when refused, the window that makes the caller
// wait longest; when allowed, the one with the least left. A refusal is
// also returned as a *DeniedError.
func Decode(ws []Window, allowed bool, nums []int64) (Result, error) {
	var r Result
	for i, w := range ws {
		remaining, retry, reset := nums[3*i], nums[3*i+1], nums[3*i+2]
		wr := Result{Allowed: allowed, Limit: w.Limit, Remaining: int(remaining),
			RetryAfter: time.Duration(retry) * time.Microsecond, ResetAfter: time.Duration(reset) * time.Microsecond}
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

// allow checks and spends cost from every window, or refuses and spends
// nothing.
func (l *Limiter) allow(ctx context.Context, cost int, ws ...Window) (Result, error) {
	keys, args, err := Args(ws)
	if err != nil {
		return Result{}, err
	}
	res, err := gcraScript.Run(ctx, l.rdb, keys, append([]any{cost}, args...)...).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: %w", err)
	}
	return Decode(ws, res[0] == 1, res[1:])
}

// Allow spends cost recipients from the tenant's per-minute and per-day
// budgets, or refuses without spending anything.
func (l *Limiter) Allow(ctx context.Context, tenantID string, lim Limit, cost int) (Result, error) {
	// Both keys carry the tenant's hash tag, so the script runs on Redis
	// Cluster.
	return l.allow(ctx, cost, TenantWindows("{"+tenantID+"}", tenantID, lim)...)
}

// Pace spaces sends to one SMTP account evenly at perMinute, shared by
// every replica: a burst the API accepted still reaches the provider at a
// pace it tolerates. key identifies the account.
func (l *Limiter) Pace(ctx context.Context, key string, perMinute int) (Result, error) {
	return l.allow(ctx, 1, Window{Key: "outbound:pace:{" + key + "}", Limit: perMinute, Period: time.Minute, Burst: 1})
}

// peekScript is gcraScript for a cost of 0 that never commits: what each
// window has left now, as the accept answer's RateLimit-* headers count it.
var peekScript = redis.NewScript(Lua + `
local _, out = gcra_check(KEYS, ARGV, 1, 0)
return out
`)

// Peek is each window's state as Allow reports the binding one (what
// could go at once, and until the window is full again), one Result per
// window, spending nothing: for pages that show a tenant's usage.
func (l *Limiter) Peek(ctx context.Context, ws ...Window) ([]Result, error) {
	keys, args, err := Args(ws)
	if err != nil {
		return nil, err
	}
	nums, err := peekScript.Run(ctx, l.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("ratelimit: peek: %w", err)
	}
	out := make([]Result, len(ws))
	for i, w := range ws {
		out[i], _ = Decode(ws[i:i+1], true, nums[3*i:3*i+3])
		out[i].Remaining = min(out[i].Remaining, w.Burst)
	}
	return out, nil
}

// Seconds rounds a duration up to whole seconds, as HTTP headers want.
func Seconds(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }
