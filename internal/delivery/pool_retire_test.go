package delivery

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/transport"
)

// Retire ends what the pool holds of a tenant's old accounts: an idle
// session is quit, a busy one closed when given back (not lent to the
// caller waiting for it, who is told to route again), and the account is
// refused from then on. Another tenant's account and the relay's are
// untouched, and a tenant going back to an old account lifts its refusal.
func TestPoolRetireEndsTheTenantsOldAccounts(t *testing.T) {
	s, d, base := testAccount(t)
	s.SetUsers(map[string]string{"u": "p", "v": "p"})
	withIdle, withBusy, current := base, base, base
	withIdle.Tenant, withBusy.Tenant, current.Tenant = "acme", "acme", "acme"
	withBusy.Username, current.Username = "v", "w"
	other, relay := base, base
	other.Tenant, relay.Trusted = "globex", true
	pool := NewPool(d.Dial, 1, time.Minute)
	defer pool.Close()
	ctx := context.Background()
	get := func(srv transport.Server) *transport.Conn {
		t.Helper()
		c, _, err := pool.Get(ctx, srv, 0)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	pool.Put(get(withIdle), true)
	busy, keptOther, keptRelay := get(withBusy), get(other), get(relay)
	waiter := make(chan error, 1)
	go func() {
		c, _, err := pool.Get(ctx, withBusy, 0)
		if c != nil {
			pool.Put(c, true)
		}
		waiter <- err
	}()
	time.Sleep(50 * time.Millisecond) // in line behind the busy session

	pool.Retire("acme", current.Key())
	select {
	case err := <-waiter:
		if !errors.Is(err, ErrAccountChanged) {
			t.Fatalf("the caller waiting for a retired account got %v, want ErrAccountChanged", err)
		}
	case <-time.After(time.Second):
		t.Fatal("the caller waiting for a retired account was not answered")
	}
	if _, _, err := pool.Get(ctx, withIdle, 0); !errors.Is(err, ErrAccountChanged) {
		t.Fatalf("Get of a retired account: %v", err)
	}
	pool.Put(busy, true)
	deadline := time.Now().Add(2 * time.Second)
	for s.OpenConnections() != 2 { // the other tenant's and the relay's
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions open, want only the 2 not retired", s.OpenConnections())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := pool.Open(); n != 2 {
		t.Errorf("the pool counts %d sessions open, want 2", n)
	}
	pool.Put(keptOther, true)
	pool.Put(keptRelay, true)
	pool.Retire("", "") // the relay belongs to no tenant: nothing to retire
	if c, reused, err := pool.Get(ctx, relay, 0); err != nil || !reused {
		t.Fatalf("the relay's session after Retire: reused %v, %v", reused, err)
	} else {
		pool.Put(c, true)
	}

	pool.Retire("acme", withIdle.Key()) // the tenant went back to that account
	pool.Put(get(withIdle), true)
}
