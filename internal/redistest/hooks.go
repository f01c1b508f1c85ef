package redistest

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// PipelineCounter counts the pipelines a client sends, so a test can tell
// calls that shared a round trip from calls that each took one. Add it
// with the client's AddHook.
type PipelineCounter struct{ n atomic.Int64 }

// Count is how many pipelines have gone out since the hook was added.
func (c *PipelineCounter) Count() int64 { return c.n.Load() }

func (c *PipelineCounter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (c *PipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (c *PipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}
