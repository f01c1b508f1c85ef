// Package coalesce runs calls that arrive at the same time as one batch (a
// group commit). A lone call runs at once; calls that arrive while a batch
// is on its way wait for it and leave together in the next, so the busier
// a replica, the larger each batch and the cheaper each call. Outbound
// uses it to write messages that arrive together in one Redis script call
// and to read tenants that miss the cache together in one pipeline.
package coalesce

import (
	"context"
	"sync"
)

// Group coalesces calls with input In and output Out.
type Group[In, Out any] struct {
	run func(ctx context.Context, ins []In) ([]Out, error)
	max int
	// weigh, when set, bounds a batch by the sum of its calls' weights
	// as well: past its first call a batch holds at most maxWeight.
	weigh     func(In) int
	maxWeight int

	mu      sync.Mutex
	pending []*call[In, Out]
	running bool
}

type call[In, Out any] struct {
	in     In
	weight int
	out    Out
	err    error
	done   chan struct{}
}

// New returns a group whose batches hold at most max calls. run gets the
// batch's inputs; it returns one output per input, or an error for the
// whole batch. With outputs, the error is returned next to each of them
// (a warning such as "not replicated"); without, it is every call's error.
func New[In, Out any](max int, run func(ctx context.Context, ins []In) ([]Out, error)) *Group[In, Out] {
	return &Group[In, Out]{run: run, max: max}
}

// NewWeighted returns a group whose batches hold at most max calls and at
// most maxWeight of total weight, as weigh measures each input (bytes,
// say): a batch takes calls in order until the next would cross either
// bound. A call heavier than maxWeight alone still runs, in a batch of
// its own.
func NewWeighted[In, Out any](max, maxWeight int, weigh func(In) int, run func(ctx context.Context, ins []In) ([]Out, error)) *Group[In, Out] {
	return &Group[In, Out]{run: run, max: max, weigh: weigh, maxWeight: maxWeight}
}

// Do runs in, with whatever else is waiting, and returns its output. When
// ctx ends first, Do returns ctx.Err(); the call may still run.
func (g *Group[In, Out]) Do(ctx context.Context, in In) (Out, error) {
	c := &call[In, Out]{in: in, done: make(chan struct{})}
	if g.weigh != nil {
		c.weight = g.weigh(in)
	}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead {
		g.flush(context.WithoutCancel(ctx))
	}
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		var zero Out
		return zero, ctx.Err()
	}
}

// flush runs one batch of what is pending. What arrived meanwhile goes in
// the next batch, on a new goroutine, so the caller that led this one is
// not held up by the calls of others.
func (g *Group[In, Out]) flush(ctx context.Context) {
	g.mu.Lock()
	n := g.batchLen()
	batch := make([]*call[In, Out], n)
	copy(batch, g.pending)
	g.pending = append(g.pending[:0], g.pending[n:]...)
	g.mu.Unlock()

	ins := make([]In, n)
	for i, c := range batch {
		ins[i] = c.in
	}
	outs, err := g.run(ctx, ins)
	for i, c := range batch {
		if outs != nil {
			c.out = outs[i]
		}
		c.err = err
		close(c.done)
	}

	g.mu.Lock()
	more := len(g.pending) > 0
	g.running = more
	g.mu.Unlock()
	if more {
		go g.flush(ctx)
	}
}

// batchLen is how many of the pending calls the next batch takes: at least
// one, at most max, and no more than fit in maxWeight.
func (g *Group[In, Out]) batchLen() int {
	n := min(len(g.pending), g.max)
	if g.weigh == nil {
		return n
	}
	total := 0
	for i, c := range g.pending[:n] {
		total += c.weight
		if i > 0 && total > g.maxWeight {
			return i
		}
	}
	return n
}
