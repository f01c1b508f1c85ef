package redisclock

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// The clock reads Redis's TIME in both units, the milliseconds being the
// microseconds rounded down, and both agree with this host's clock (the
// same machine runs the redis-server).
func TestClock(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	read := redis.NewScript(Lua + `
local us = redis_now_us()
local ms = redis_now_ms()
return {us, ms}
`)
	before := time.Now()
	res, err := read.Run(context.Background(), rdb, nil).Int64Slice()
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	us, ms := res[0], res[1]
	// ms is read a moment after us, so it may be a little later.
	if ms < us/1000 || ms > us/1000+50 {
		t.Fatalf("redis_now_ms() = %d, redis_now_us() = %d: not the same instant in ms", ms, us)
	}
	slack := int64(time.Second / time.Microsecond)
	if us < before.UnixMicro()-slack || us > after.UnixMicro()+slack {
		t.Fatalf("redis_now_us() = %d, this host says %d..%d", us, before.UnixMicro(), after.UnixMicro())
	}
	if ms < before.UnixMilli()-1000 || ms > after.UnixMilli()+1000 {
		t.Fatalf("redis_now_ms() = %d, this host says %d..%d", ms, before.UnixMilli(), after.UnixMilli())
	}
}
