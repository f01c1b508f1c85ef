package tenant

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ChangeKind says what of a tenant changed.
type ChangeKind string

// What a Change can be. Each is emitted by the one Store method that makes
// it, so no caller of the store can forget to tell.
const (
	// ChangeProfile: Put stored a new version of the profile.
	ChangeProfile ChangeKind = "profile"
	// ChangeDeleted: Delete removed the profile; the tenant now sends
	// through the default relay.
	ChangeDeleted ChangeKind = "deleted"
	// ChangePaused and ChangeResumed: SetStatus paused or resumed sending.
	ChangePaused  ChangeKind = "paused"
	ChangeResumed ChangeKind = "resumed"
	// ChangeGrant: SetRefreshToken stored a refresh token the provider
	// rotated. The consent is the same; it just proved to work.
	ChangeGrant ChangeKind = "grant"
	// ChangeRecovered: SetLastError cleared the profile's last error (a
	// delivery or a verify succeeded after a failure).
	ChangeRecovered ChangeKind = "recovered"
)

// Change is one write of a tenant, as watchers are told of it.
type Change struct {
	TenantID string     `json:"tenant_id"`
	Kind     ChangeKind `json:"kind"`
	// Remote marks a change another replica made, heard over Redis: what
	// lives in Redis it has seen to already; what lives in this
	// replica's memory is for this replica to do.
	Remote bool `json:"-"`
}

// changeChannel carries changes to every replica.
const changeChannel = "outbound:tenant-change"

// changeNotice is a Change on the wire, with the replica it came from so
// that a replica does not apply its own change twice.
type changeNotice struct {
	Change
	Origin string `json:"origin"`
}

// watchers are the functions told of changes, and the subscription that
// brings other replicas' changes.
type watchers struct {
	origin string
	mu     sync.Mutex
	fns    []func(context.Context, Change)
	sub    *redis.PubSub
	done   chan struct{}
}

// Watch has fn told of every change of a tenant: at once and with the
// writer's context in the process that wrote it (after the write, before
// the write method returns), and, over Redis, in every other replica that
// watches. fn must not call the store's write methods. stop ends this
// store's subscription (every watcher's).
func (s *Store) Watch(fn func(context.Context, Change)) (stop func() error) {
	w := &s.watchers
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fns = append(w.fns, fn)
	if w.sub == nil {
		w.sub = s.rdb.Subscribe(context.Background(), changeChannel)
		w.done = make(chan struct{})
		go s.listen(w.sub, w.done)
	}
	sub, done := w.sub, w.done
	return func() error {
		err := sub.Close()
		<-done
		return err
	}
}

// listen applies other replicas' changes here.
func (s *Store) listen(sub *redis.PubSub, done chan struct{}) {
	defer close(done)
	for msg := range sub.Channel() {
		var n changeNotice
		if json.Unmarshal([]byte(msg.Payload), &n) != nil || n.Origin == s.watchers.origin || !ValidID(n.TenantID) {
			continue
		}
		// The cache's own notice travels on another channel and may come
		// after this one: what the watcher loads must be the new state.
		if s.cache != nil {
			s.cache.Forget(n.TenantID)
		}
		n.Remote = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s.tell(ctx, n.Change)
		cancel()
	}
}

// emit tells this process's watchers of c, then every other replica's. A
// lost notice leaves other replicas' memory (parked messages, pooled
// sessions) to its own bounds (parkMax, the idle timeout), so it is not
// an error of the write.
func (s *Store) emit(ctx context.Context, c Change) {
	s.tell(ctx, c)
	b, err := json.Marshal(changeNotice{Change: c, Origin: s.watchers.origin})
	if err == nil {
		_ = s.rdb.Publish(ctx, changeChannel, b).Err()
	}
}

func (s *Store) tell(ctx context.Context, c Change) {
	s.watchers.mu.Lock()
	fns := s.watchers.fns
	s.watchers.mu.Unlock()
	for _, fn := range fns {
		fn(ctx, c)
	}
}

func newOrigin() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
