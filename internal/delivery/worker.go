package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/retry"
)

// job is a begun entry for a worker; inTurn marks one that was set aside
// and whose account just freed a session for it.
type job struct {
	st     queue.Started
	inTurn bool
}

// readBatch bounds how many entries one read takes.
const readBatch = 64

// noBlock makes a stream read answer at once (go-redis sends no BLOCK for a
// negative duration).
const noBlock = -1

// Start runs the workers and the loops that feed them: one reader per
// stream partition, a reclaimer for entries whose worker died, a mover for
// due retries, and a heartbeat for slow sends. It returns at once.
func (s *Service) Start() {
	if s.cfg.Workers == 0 {
		return
	}
	feedCtx, stop := context.WithCancel(context.Background())
	workCtx, hardStop := context.WithCancel(context.Background())
	s.stop, s.hardStop = stop, hardStop

	jobs := make(chan job)
	// slots holds one token per worker that is busy or has an entry on its
	// way; readers take a token per entry before reading it, so nothing is
	// read that no worker is free to start.
	slots := make(chan struct{}, s.cfg.Workers)
	for range s.cfg.Workers {
		s.workers.Go(func() {
			for j := range jobs {
				s.handle(workCtx, j.st, j.inTurn)
				<-slots
			}
		})
	}
	for p := range s.queue.Partitions() {
		s.feeders.Go(func() { s.readLoop(feedCtx, p, jobs, slots) })
	}
	s.feeders.Go(func() { s.unparkLoop(feedCtx, jobs, slots) })
	s.feeders.Go(func() { s.reclaimLoop(feedCtx, jobs, slots) })
	s.feeders.Go(func() { s.moveLoop(feedCtx) })
	s.feeders.Go(func() { s.pruneLoop(feedCtx) })
	go func() {
		s.feeders.Wait()
		close(jobs)
	}()
	// Claims are refreshed until the last worker is done, not only while
	// work is taken: a send that goes on in a shutdown must not be
	// mistaken for a dead worker's and sent again by another replica.
	touchCtx, stopTouch := context.WithCancel(context.Background())
	s.toucher.Go(func() { s.touchLoop(touchCtx) })
	go func() {
		s.workers.Wait()
		stopTouch()
	}()
}

// Shutdown stops taking work and waits for messages in flight. When ctx
// ends first, sessions in flight are cut; their messages are retried
// (connection lost) and nothing is lost.
func (s *Service) Shutdown(ctx context.Context) error {
	s.stopWatching()
	if s.stop == nil {
		s.pool.Close()
		return nil
	}
	s.stop()
	done := make(chan struct{})
	go func() { s.feeders.Wait(); s.workers.Wait(); s.toucher.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.hardStop()
		<-done
		err = ctx.Err()
	}
	s.hardStop()
	s.pool.Close()
	return err
}

// reserve takes one slot (waiting) and up to max-1 more (not waiting).
func reserve(ctx context.Context, slots chan struct{}, max int) int {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < max {
		select {
		case slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func unreserve(slots chan struct{}, n int) {
	for range n {
		<-slots
	}
}

// dispatch begins the delivery of entries read together, in one round
// trip, and hands them to workers; entries it cannot hand over because the
// service is stopping go back to the stream at once. Each entry holds a
// slot; those with nothing to deliver give theirs back.
func (s *Service) dispatch(ctx context.Context, es []queue.Entry, jobs chan<- job, slots chan struct{}) {
	es = s.notInFlight(es, slots)
	if len(es) == 0 {
		return
	}
	store, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	started, err := s.queue.Begin(store, es)
	cancel()
	switch {
	case errors.Is(err, queue.ErrRecordMissing):
		// Failed where they can be seen (status and event): say which.
		s.log.Warn("messages whose records were gone failed as "+queue.CodeRecordMissing, "partition", es[0].Partition,
			"error", err)
	case err != nil:
		// Left pending: another worker reclaims them once Redis answers.
		s.log.Warn("begin delivery", "partition", es[0].Partition, "entries", len(es), "error", err)
	}
	unreserve(slots, len(es)-len(started))
	s.inflightMu.Lock()
	for _, st := range started {
		s.inflight[st.Entry] = struct{}{} // claims kept fresh from now on, see touchLoop
	}
	s.inflightMu.Unlock()
	for i, st := range started {
		select {
		case jobs <- job{st: st}:
		case <-ctx.Done():
			for _, rest := range started[i:] {
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if err := s.queue.Release(rctx, rest.Entry); err != nil {
					s.log.Warn("release entry", "message_id", rest.ID, "error", err)
				}
				cancel()
				s.done(rest.Entry)
			}
			unreserve(slots, len(started)-i)
			return
		}
	}
}

// unparkLoop hands messages kept aside back to workers as their accounts
// free a session. When the service stops, those still aside go back to
// the stream, to be read at once by any replica.
func (s *Service) unparkLoop(ctx context.Context, jobs chan<- job, slots chan struct{}) {
	var pending []queue.Started
	for {
		j, ok := s.parking.next(ctx)
		if !ok {
			break
		}
		if reserve(ctx, slots, 1) == 0 {
			pending = append(pending, j.st)
			break
		}
		select {
		case jobs <- j:
		case <-ctx.Done():
			unreserve(slots, 1)
			pending = append(pending, j.st)
		}
	}
	for _, st := range append(pending, s.parking.close()...) {
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := s.queue.Release(rctx, st.Entry); err != nil {
			s.log.Warn("release entry", "message_id", st.ID, "error", err)
		}
		cancel()
		s.done(st.Entry)
	}
}

// notInFlight drops the entries a worker of this replica is still on
// (reclaimed because Redis was away too long to refresh their claims,
// while the worker retries their outcome, see finish) and gives back
// their slots: beginning them again would send them again.
func (s *Service) notInFlight(es []queue.Entry, slots chan struct{}) []queue.Entry {
	s.inflightMu.Lock()
	kept := es[:0]
	for _, e := range es {
		if _, busy := s.inflight[e]; !busy {
			kept = append(kept, e)
		}
	}
	s.inflightMu.Unlock()
	unreserve(slots, len(es)-len(kept))
	return kept
}

// done forgets an entry whose delivery ended.
func (s *Service) done(e queue.Entry) {
	s.inflightMu.Lock()
	delete(s.inflight, e)
	s.inflightMu.Unlock()
}

func (s *Service) readLoop(ctx context.Context, p int, jobs chan<- job, slots chan struct{}) {
	var failing bool
	for ctx.Err() == nil {
		n := reserve(ctx, slots, readBatch)
		if n == 0 {
			return
		}
		// Take what is there without waiting; only then wait for more, on
		// one slot, so that a reader waiting on an empty partition holds no
		// slot another partition's entries could use.
		es, err := s.queue.Read(ctx, p, s.cfg.Consumer, n, noBlock)
		if err == nil && len(es) == 0 {
			unreserve(slots, n-1)
			n = 1
			es, err = s.queue.Read(ctx, p, s.cfg.Consumer, n, queue.ReadWait)
		}
		unreserve(slots, n-len(es))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				s.log.Error("queue read failing; retrying every second", "partition", p, "error", err)
				failing = true
			}
			retry.Sleep(ctx, time.Second)
			continue
		}
		if failing {
			s.log.Info("queue read recovered", "partition", p)
			failing = false
		}
		s.dispatch(ctx, es, jobs, slots)
	}
}

func (s *Service) reclaimLoop(ctx context.Context, jobs chan<- job, slots chan struct{}) {
	every := max(s.cfg.ClaimAfter/4, 50*time.Millisecond)
	for retry.Sleep(ctx, every) {
		for p := range s.queue.Partitions() {
			n := reserve(ctx, slots, readBatch)
			if n == 0 {
				return
			}
			es, err := s.queue.Reclaim(ctx, p, s.cfg.Consumer, s.cfg.ClaimAfter, n)
			unreserve(slots, n-len(es))
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("reclaim", "partition", p, "error", err)
				}
				continue
			}
			if len(es) > 0 {
				s.log.Info("reclaimed entries of a stalled worker", "partition", p, "count", len(es))
			}
			s.dispatch(ctx, es, jobs, slots)
		}
	}
}

// Consumers left in the stream groups by replicas that stopped are
// removed once they hold nothing and have been idle this long; see
// queue.PruneConsumers. A live replica reads every second, so it is never
// idle this long.
const (
	consumerIdle = time.Hour
	pruneEvery   = 10 * time.Minute
)

// pruneLoop removes the consumers stopped replicas left behind: each start
// names a new one.
func (s *Service) pruneLoop(ctx context.Context) {
	for retry.Sleep(ctx, pruneEvery) {
		for p := range s.queue.Partitions() {
			n, err := s.queue.PruneConsumers(ctx, p, consumerIdle)
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Warn("prune consumers", "partition", p, "error", err)
			case n > 0:
				s.log.Info("removed consumers of stopped replicas", "partition", p, "count", n)
			}
		}
	}
}

// moveLoop requeues retries as they fall due.
func (s *Service) moveLoop(ctx context.Context) {
	every := min(max(s.cfg.RetryBase/4, 20*time.Millisecond), time.Second)
	const limit = 500
	for retry.Sleep(ctx, every) {
		for p := range s.queue.Partitions() {
			for {
				n, err := s.queue.MoveDue(ctx, p, limit)
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
						s.log.Warn("move due retries", "partition", p, "error", err)
					}
					break
				}
				if n < limit {
					break
				}
			}
		}
	}
}

// touchLoop keeps the claims of messages in flight fresh, so a slow send is
// not mistaken for a dead worker.
func (s *Service) touchLoop(ctx context.Context) {
	for retry.Sleep(ctx, s.cfg.ClaimAfter/3) {
		byPartition := map[int][]string{}
		s.inflightMu.Lock()
		for e := range s.inflight {
			byPartition[e.Partition] = append(byPartition[e.Partition], e.StreamID)
		}
		s.inflightMu.Unlock()
		for p, ids := range byPartition {
			if err := s.queue.Touch(ctx, p, s.cfg.Consumer, ids); err != nil && ctx.Err() == nil {
				s.log.Warn("refresh claims", "partition", p, "error", err)
			}
		}
	}
}
