package redistest

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// ConcurrentPipelines runs call(0) to call(n-1) at once and returns each
// call's error and how many pipelines rdb sent meanwhile, so a test can
// tell calls that shared round trips from calls that each took one.
func ConcurrentPipelines(rdb redis.UniversalClient, n int, call func(i int) error) (errs []error, pipelines int64) {
	counter := &pipelineCounter{}
	rdb.AddHook(counter)
	errs = make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = call(i) })
	}
	wg.Wait()
	return errs, counter.n.Load()
}

// pipelineCounter is a go-redis hook counting the pipelines a client sends.
type pipelineCounter struct{ n atomic.Int64 }

func (c *pipelineCounter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (c *pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (c *pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}
