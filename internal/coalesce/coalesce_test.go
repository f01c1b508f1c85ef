package coalesce

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// Calls that arrive while a batch is on its way leave together in the
// next, each with its own output.
func TestCallsArrivingMeanwhileLeaveTogether(t *testing.T) {
	r := newHeldRun()
	g := New(100, r.run)
	ctx := context.Background()
	var wg sync.WaitGroup
	outs := make([]int, 11)
	wg.Go(func() { outs[0], _ = g.Do(ctx, 0) })
	<-r.started
	for i := 1; i <= 10; i++ {
		wg.Go(func() { outs[i], _ = g.Do(ctx, i) })
	}
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.pending) == 10 })
	close(r.release)
	wg.Wait()
	if sizes := r.batchSizes(); len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 10 {
		t.Errorf("batch sizes %v, want [1 10]", sizes)
	}
	for i, out := range outs {
		if out != i*10 {
			t.Errorf("caller %d got %d", i, out)
		}
	}
}

// No batch holds more than max calls.
func TestBatchesHoldAtMostMax(t *testing.T) {
	r := newHeldRun()
	g := New(4, r.run)
	var wg sync.WaitGroup
	wg.Go(func() { g.Do(context.Background(), 0) })
	<-r.started
	for i := 1; i <= 10; i++ {
		wg.Go(func() { g.Do(context.Background(), i) })
	}
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.pending) == 10 })
	close(r.release)
	wg.Wait()
	sizes := r.batchSizes()
	total := 0
	for _, n := range sizes {
		if n > 4 {
			t.Errorf("a batch of %d", n)
		}
		total += n
	}
	if total != 11 {
		t.Errorf("%d calls ran, want 11 (sizes %v)", total, sizes)
	}
}

// A weighted group closes a batch before the call that would take it past
// its weight, keeping the calls in order; a call heavier than the bound
// goes alone.
func TestBatchesHoldAtMostMaxWeight(t *testing.T) {
	r := newHeldRun()
	g := NewWeighted(100, 6, func(in int) int { return in }, r.run)
	var wg sync.WaitGroup
	wg.Go(func() { g.Do(context.Background(), 0) })
	<-r.started
	weights := []int{3, 3, 3, 10, 1, 1}
	for i, w := range weights {
		// One at a time, so that they wait in this order.
		wg.Go(func() { g.Do(context.Background(), w) })
		waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.pending) == i+1 })
	}
	close(r.release)
	wg.Wait()
	want := []int{1, 2, 1, 1, 2} // [0] [3 3] [3] [10] [1 1]
	if sizes := r.batchSizes(); !slices.Equal(sizes, want) {
		t.Errorf("batch sizes %v, want %v", sizes, want)
	}
}

// A batch that fails as a whole fails every call in it; with outputs, the
// error comes next to each. A caller whose context ends stops waiting.
func TestErrorsAndCancellation(t *testing.T) {
	release := make(chan struct{})
	boom := errors.New("connection lost")
	g := New(100, func(_ context.Context, ins []int) ([]int, error) {
		<-release
		if ins[0] == 1 {
			return []int{7}, boom
		}
		return nil, boom
	})
	var wg sync.WaitGroup
	var leadErr error
	wg.Go(func() { _, leadErr = g.Do(context.Background(), 0) })
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.running && len(g.pending) == 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := g.Do(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled caller got %v", err)
	}
	close(release)
	wg.Wait()
	if !errors.Is(leadErr, boom) {
		t.Errorf("leader got %v, want the batch's error", leadErr)
	}
	// The cancelled call still runs, in a batch of its own.
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return !g.running })
	if out, err := g.Do(context.Background(), 1); out != 7 || !errors.Is(err, boom) {
		t.Errorf("with outputs: %d %v, want 7 and the error", out, err)
	}
}

// heldRun is a batch function that holds its first batch until released
// and answers each input times ten, recording batch sizes.
type heldRun struct {
	started, release chan struct{}
	mu               sync.Mutex
	sizes            []int
}

func newHeldRun() *heldRun {
	return &heldRun{started: make(chan struct{}), release: make(chan struct{})}
}

func (r *heldRun) run(_ context.Context, ins []int) ([]int, error) {
	r.mu.Lock()
	r.sizes = append(r.sizes, len(ins))
	first := len(r.sizes) == 1
	r.mu.Unlock()
	if first {
		close(r.started)
		<-r.release
	}
	outs := make([]int, len(ins))
	for i, in := range ins {
		outs[i] = in * 10
	}
	return outs, nil
}

func (r *heldRun) batchSizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.sizes...)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
