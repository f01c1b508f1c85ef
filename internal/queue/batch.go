package queue

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/coalesce"
)

// A batchScript runs a script body for many invocations in one call. The
// body reads its own KEYS and ARGV as usual: the wrapper hands each
// invocation its slice of the call's keys and arguments, runs it under
// pcall so that one invocation's error is its own, and returns one reply
// per invocation.
//
// Why: per message, Redis spends more on a script call than on the hash
// and stream commands inside it; inside a batch each script costs Redis
// about half its time called alone (docs/measurements.md, "Batched script
// calls"). So messages that arrive together are written together.
//
// Call layout: ARGV[1] is the number of invocations n, ARGV[2..2n+1] hold
// each invocation's key and argument counts, and the invocations' keys and
// arguments follow in order.
type batchScript struct{ *redis.Script }

// newBatchScript wraps body; prelude (local functions the body uses) is
// defined once per call, and epilogue runs once after every invocation.
func newBatchScript(prelude, epilogue, body string) batchScript {
	return batchScript{redis.NewScript(prelude + `
local function call(KEYS, ARGV)
` + body + `
end
local n = tonumber(ARGV[1])
local ki, ai, out = 1, 2 + 2 * n, {}
for c = 1, n do
  local nk, na = tonumber(ARGV[2 * c]), tonumber(ARGV[2 * c + 1])
  local keys, argv = {unpack(KEYS, ki, ki + nk - 1)}, {unpack(ARGV, ai, ai + na - 1)}
  ki, ai = ki + nk, ai + na
  local ok, res = pcall(call, keys, argv)
  if not ok then
    if type(res) == 'table' and res.err then res = res.err end
    res = {err = tostring(res)}
  elseif res == nil then
    res = false
  end
  out[c] = res
end
` + epilogue + `
return out
`)}
}

// invocation is one run of a batch script's body.
type invocation struct {
	keys []string
	args []any
}

// size is about how many bytes the invocation adds to a call: its keys'
// and arguments' lengths, numbers counted at their longest.
func (inv invocation) size() int {
	n := 0
	for _, k := range inv.keys {
		n += len(k)
	}
	for _, a := range inv.args {
		switch v := a.(type) {
		case string:
			n += len(v)
		case []byte:
			n += len(v)
		default:
			n += 20
		}
	}
	return n
}

// run runs the invocations in one call and returns each one's reply, or
// its error. err is set when the call as a whole failed; then no reply is
// known (the invocations may or may not have run).
func (s batchScript) run(ctx context.Context, rdb redis.Scripter, calls []invocation) ([]any, error) {
	keys, args := flatten(calls)
	return replies(s.Run(ctx, rdb, keys, args...), len(calls))
}

// eval queues the call as a plain EVAL, for a pipeline (where a missing
// script cannot be loaded and retried); replies reads its result.
func (s batchScript) eval(ctx context.Context, pipe redis.Pipeliner, calls []invocation) *redis.Cmd {
	keys, args := flatten(calls)
	return s.Eval(ctx, pipe, keys, args...)
}

func flatten(calls []invocation) (keys []string, args []any) {
	nk, na := 0, 1+2*len(calls)
	for _, c := range calls {
		nk, na = nk+len(c.keys), na+len(c.args)
	}
	keys, args = make([]string, 0, nk), make([]any, 1, na)
	args[0] = len(calls)
	for _, c := range calls {
		args = append(args, len(c.keys), len(c.args))
	}
	for _, c := range calls {
		keys = append(keys, c.keys...)
		args = append(args, c.args...)
	}
	return keys, args
}

// replies checks that cmd holds one reply per invocation.
func replies(cmd *redis.Cmd, n int) ([]any, error) {
	res, err := cmd.Slice()
	if err != nil {
		return nil, err
	}
	if len(res) != n {
		return nil, fmt.Errorf("batch script answered %d replies for %d invocations", len(res), n)
	}
	return res, nil
}

// invoke runs inv through g, with whatever else is waiting, and returns its
// reply; the invocation's own error comes before the call's.
func invoke(ctx context.Context, g *coalesce.Group[invocation, any], inv invocation) (any, error) {
	reply, err := g.Do(ctx, inv)
	if rerr := replyErr(reply); rerr != nil {
		return nil, rerr
	}
	return reply, err
}

// replyErr is the error of one invocation's reply, if it failed.
func replyErr(reply any) error {
	if err, ok := reply.(error); ok {
		return err
	}
	return nil
}
