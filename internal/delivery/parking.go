package delivery

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/outbound-mail/outbound/internal/queue"
)

// Messages that only wait a little (their account is busy, or not yet its
// pace) are kept aside in memory rather than written back to Redis and read
// again: with one busy account and many messages for it, that round would
// otherwise cost more than sending. A parked message holds no worker; its
// entry stays pending under this consumer, its claim kept fresh, so a crash
// loses nothing (another replica reclaims it).
const (
	parkBytes    = 64 << 20         // payloads kept aside per process
	parkOverhead = 1 << 10          // per message, beside its payload
	parkWait     = 30 * time.Second // longer waits go back to Redis
)

// parked is one message kept aside.
type parked struct {
	st   queue.Started
	due  time.Time
	size int // what it holds of parkBytes
}

// parking is the messages kept aside, by due time.
type parking struct {
	mu     sync.Mutex
	due    parkedHeap
	bytes  int
	closed bool          // the service is stopping: nothing more is kept
	wake   chan struct{} // a message was added
}

func newParking() *parking { return &parking{wake: make(chan struct{}, 1)} }

// add keeps p aside; false when the memory for it is spent.
func (k *parking) add(p parked) bool {
	k.mu.Lock()
	if k.closed || k.bytes+p.size > parkBytes {
		k.mu.Unlock()
		return false
	}
	k.bytes += p.size
	heap.Push(&k.due, p)
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
	return true
}

// next waits for the first message due and takes it; false once ctx ends.
func (k *parking) next(ctx context.Context) (parked, bool) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		k.mu.Lock()
		wait := time.Hour
		if len(k.due) > 0 {
			if wait = time.Until(k.due[0].due); wait <= 0 {
				p := heap.Pop(&k.due).(parked)
				k.bytes -= p.size
				k.mu.Unlock()
				return p, true
			}
		}
		k.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return parked{}, false
		case <-k.wake:
		case <-timer.C:
		}
	}
}

// close takes every message still aside and keeps no more.
func (k *parking) close() []parked {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	out := []parked(k.due)
	k.due, k.bytes = nil, 0
	return out
}

type parkedHeap []parked

func (h parkedHeap) Len() int           { return len(h) }
func (h parkedHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h parkedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *parkedHeap) Push(x any)        { *h = append(*h, x.(parked)) }
func (h *parkedHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}
