package tenant

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
)

// changeLog records the changes a watcher is told of.
type changeLog struct {
	mu      sync.Mutex
	changes []Change
}

func (l *changeLog) watch(_ context.Context, c Change) {
	l.mu.Lock()
	l.changes = append(l.changes, c)
	l.mu.Unlock()
}

func (l *changeLog) take() []Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.changes
	l.changes = nil
	return out
}

// waitFor waits until the log holds n changes and takes them.
func (l *changeLog) waitFor(t *testing.T, n int) []Change {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		l.mu.Lock()
		got := len(l.changes)
		l.mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			return l.take()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Every write that changes what delivery does for a tenant tells the
// watchers of the writing store at once, and those of another replica's
// store over Redis (marked Remote); a replica is not told its own change
// twice, and a write that changes nothing (a last error recorded, a
// refresh token for a version that moved on) tells no one.
func TestStoreTellsWatchersOfEveryChange(t *testing.T) {
	srv := redistest.Start(t)
	key := seal.NewKey()
	here, there := NewStore(srv.Client(t), mustSealer(t, key)), NewStore(srv.Client(t), mustSealer(t, key))
	stopHere := here.UseCache(time.Hour)
	defer stopHere()
	stopThere := there.UseCache(time.Hour)
	defer stopThere()
	var local, remote changeLog
	defer here.Watch(local.watch)()
	defer there.Watch(remote.watch)()
	time.Sleep(100 * time.Millisecond) // the subscriptions are made

	ctx := context.Background()
	if _, _, _, err := there.Load(ctx, "acme"); err != nil { // cached as absent
		t.Fatal(err)
	}
	p, err := here.Put(ctx, mustProfile(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := here.SetLastError(ctx, "acme", p.Version, &LastError{Code: "auth_failed", At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if err := here.SetLastError(ctx, "acme", p.Version, nil); err != nil {
		t.Fatal(err)
	}
	if err := here.SetRefreshToken(ctx, "acme", p.Version+1, secret.New("rt")); err != nil { // moved on: not stored
		t.Fatal(err)
	}
	if err := here.SetRefreshToken(ctx, "acme", p.Version, secret.New("rt")); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{SendingPaused, SendingActive} {
		if _, err := here.SetStatus(ctx, "acme", Status{Sending: st}); err != nil {
			t.Fatal(err)
		}
	}
	if err := here.Delete(ctx, "acme", 0); err != nil {
		t.Fatal(err)
	}

	want := []ChangeKind{ChangeProfile, ChangeRecovered, ChangeGrant, ChangePaused, ChangeResumed, ChangeDeleted}
	for _, side := range []struct {
		name   string
		log    *changeLog
		remote bool
	}{{"writer", &local, false}, {"other replica", &remote, true}} {
		got := side.log.waitFor(t, len(want))
		time.Sleep(100 * time.Millisecond)
		got = append(got, side.log.take()...) // none more may come
		var kinds []ChangeKind
		for _, c := range got {
			kinds = append(kinds, c.Kind)
			if c.TenantID != "acme" || c.Remote != side.remote {
				t.Errorf("%s: told %+v", side.name, c)
			}
		}
		if !slices.Equal(kinds, want) {
			t.Errorf("%s was told %v, want %v", side.name, kinds, want)
		}
	}
}

// A replica told of a change loads the new state, even before its cache
// hears of the write on its own channel.
func TestRemoteChangeLoadsTheNewProfile(t *testing.T) {
	srv := redistest.Start(t)
	key := seal.NewKey()
	here, there := NewStore(srv.Client(t), mustSealer(t, key)), NewStore(srv.Client(t), mustSealer(t, key))
	stop := there.UseCache(time.Hour)
	defer stop()
	ctx := context.Background()
	if _, _, _, err := there.Load(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	found := make(chan bool, 1)
	defer there.Watch(func(ctx context.Context, c Change) {
		_, ok, _, _ := there.Load(ctx, c.TenantID)
		found <- ok
	})()
	time.Sleep(100 * time.Millisecond)
	// here has no cache: only the change notice tells there.
	if _, err := here.Put(ctx, mustProfile(t), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-found:
		if !ok {
			t.Fatal("the watcher loaded the profile as it was before the change")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the other replica was not told")
	}
}
