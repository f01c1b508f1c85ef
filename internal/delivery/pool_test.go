package delivery

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
)

func testAccount(t *testing.T) (*smtptest.Server, *transport.Dialer, transport.Server) {
	t.Helper()
	s := smtptest.Start(t, smtptest.Options{Users: map[string]string{"u": "p"}})
	d := &transport.Dialer{AllowPrivate: true, RootCAs: s.CA.Pool(), HeloName: "test",
		ConnectTimeout: 3 * time.Second, CommandTimeout: 3 * time.Second, DataTimeout: 3 * time.Second}
	srv := transport.Server{Host: "127.0.0.1", Port: s.Port(), Security: tenant.SecurityTLS, Auth: tenant.AuthPlain,
		Username: "u", Password: secret.New("p")}
	return s, d, srv
}

func TestPoolCapsSessionsPerAccount(t *testing.T) {
	s, d, srv := testAccount(t)
	var dials atomic.Int32
	pool := NewPool(func(ctx context.Context, srv transport.Server) (*transport.Conn, error) {
		dials.Add(1)
		return d.Dial(ctx, srv)
	}, 2, time.Minute)
	defer pool.Close()

	var wg sync.WaitGroup
	var inUse, peak atomic.Int32
	for i := range 20 {
		wg.Go(func() {
			c, err := getPatiently(pool, srv)
			if err != nil {
				t.Error(err)
				return
			}
			raise(&peak, inUse.Add(1))
			_, err = c.Send("u@example.com", []string{"r@example.com"}, []byte("Subject: "+string(rune('a'+i))+"\r\n\r\nx\r\n"))
			inUse.Add(-1)
			pool.Put(c, c.Reusable(err))
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if peak.Load() > 2 || dials.Load() > 2 || s.Connections() > 2 {
		t.Fatalf("peak %d sessions in use, %d dials, %d connections; cap is 2", peak.Load(), dials.Load(), s.Connections())
	}
	if got := len(s.Messages()); got != 20 {
		t.Fatalf("%d messages sent, want 20", got)
	}
	if pool.Open() != int(dials.Load()) {
		t.Errorf("open = %d, dials = %d", pool.Open(), dials.Load())
	}
}

func TestPoolWaiterGivesUp(t *testing.T) {
	_, d, srv := testAccount(t)
	pool := NewPool(d.Dial, 1, time.Minute)
	defer pool.Close()
	held, _, err := pool.Get(context.Background(), srv, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := pool.Get(ctx, srv, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter past the cap: %v", err)
	}
	// The slot is not leaked by the waiter that gave up.
	pool.Put(held, false)
	c, reused, err := pool.Get(context.Background(), srv, 0)
	if err != nil || reused {
		t.Fatalf("after the holder closed its session: %v reused=%v", err, reused)
	}
	pool.Put(c, true)
	if c2, reused, _ := pool.Get(context.Background(), srv, 0); !reused || c2 != c {
		t.Fatal("idle session not reused")
	}
}

func TestPoolClosesIdleSessions(t *testing.T) {
	_, d, srv := testAccount(t)
	pool := NewPool(d.Dial, 2, 100*time.Millisecond)
	defer pool.Close()
	c, _, err := pool.Get(context.Background(), srv, 0)
	if err != nil {
		t.Fatal(err)
	}
	pool.Put(c, true)
	if pool.Open() != 1 {
		t.Fatalf("open = %d", pool.Open())
	}
	deadline := time.Now().Add(2 * time.Second)
	for pool.Open() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle session never closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, reused, err := pool.Get(context.Background(), srv, 0); err != nil || reused {
		t.Fatalf("after reaping: reused=%v err=%v", reused, err)
	}
}

func TestPoolKeysByCredentials(t *testing.T) {
	s, d, srv := testAccount(t)
	s.SetUsers(map[string]string{"u": "p", "v": "q"})
	pool := NewPool(d.Dial, 1, time.Minute)
	defer pool.Close()
	other := srv
	other.Username, other.Password = "v", secret.New("q")
	a, _, err := pool.Get(context.Background(), srv, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Another account is not blocked by the first one's cap.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, _, err := pool.Get(ctx, other, 0)
	if err != nil {
		t.Fatalf("second account waited on the first: %v", err)
	}
	pool.Put(a, true)
	pool.Put(b, true)
	if s.Auths() != 2 {
		t.Fatalf("logins = %d", s.Auths())
	}
}

// A burst for one account opens its sessions one dial at a time: callers
// wait for the dial in progress or a session given back, so a few messages
// share a login instead of each opening a session (the cap is 8 here).
func TestPoolDialsOneAtATime(t *testing.T) {
	s, d, srv := testAccount(t)
	var dials, dialling, peakDialling atomic.Int32
	pool := NewPool(func(ctx context.Context, srv transport.Server) (*transport.Conn, error) {
		dials.Add(1)
		raise(&peakDialling, dialling.Add(1))
		defer dialling.Add(-1)
		time.Sleep(50 * time.Millisecond) // a login is slow next to a transaction
		return d.Dial(ctx, srv)
	}, 8, time.Minute)
	defer pool.Close()

	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			c, _, err := pool.Get(context.Background(), srv, 0)
			if err != nil {
				t.Error(err)
				return
			}
			_, err = c.Send("u@example.com", []string{"r@example.com"}, []byte("Subject: "+string(rune('a'+i))+"\r\n\r\nx\r\n"))
			pool.Put(c, c.Reusable(err))
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := len(s.Messages()); got != 5 {
		t.Fatalf("%d messages sent, want 5", got)
	}
	if peakDialling.Load() != 1 {
		t.Errorf("%d dials at once, want 1", peakDialling.Load())
	}
	if dials.Load() >= 5 {
		t.Errorf("%d dials for 5 messages: each opened its own session", dials.Load())
	}
	t.Logf("5 messages, %d logins", dials.Load())
}

// getPatiently is Get for a caller that tries again while the account is
// busy, as a message set aside comes back.
func getPatiently(pool *Pool, srv transport.Server) (*transport.Conn, error) {
	for {
		c, _, err := pool.Get(context.Background(), srv, 0)
		if !errors.Is(err, ErrBusy) {
			return c, err
		}
		time.Sleep(time.Millisecond)
	}
}

// A dial cut short by its own caller's deadline says nothing about the
// account: a waiting caller gets to dial in its place.
func TestPoolDialCutByItsCallerPassesOn(t *testing.T) {
	_, d, srv := testAccount(t)
	var dials atomic.Int32
	pool := NewPool(func(ctx context.Context, srv transport.Server) (*transport.Conn, error) {
		if dials.Add(1) == 1 {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return d.Dial(ctx, srv)
	}, 2, time.Minute)
	defer pool.Close()

	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, _, err := pool.Get(short, srv, 0)
		first <- err
	}()
	for dials.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	c, _, err := pool.Get(context.Background(), srv, 0)
	if err != nil {
		t.Fatalf("the waiting caller failed with the first caller's deadline: %v", err)
	}
	pool.Put(c, true)
	if err := <-first; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first caller: %v", err)
	}
	if dials.Load() != 2 || pool.Open() != 1 {
		t.Errorf("%d dials, %d open; want 2, 1", dials.Load(), pool.Open())
	}
}

// A server that takes connections and never greets: the one dial in
// progress fails at its connect timeout, and every caller waiting for it
// fails with it at once, instead of each dialling and timing out in turn.
func TestPoolFailedDialFailsEveryWaiter(t *testing.T) {
	silent := smtptest.StartSilent(t)
	d := &transport.Dialer{AllowPrivate: true, HeloName: "test", ConnectTimeout: 300 * time.Millisecond,
		CommandTimeout: time.Second, DataTimeout: time.Second}
	srv := transport.Server{Host: "127.0.0.1", Port: silent.Port(), Security: tenant.SecurityTLS, Auth: tenant.AuthPlain,
		Username: "u", Password: secret.New("p"), Tenant: "acme"}
	pool := NewPool(d.Dial, 3, time.Minute)
	pool.maxWait = 10 * time.Second // longer than the dial: the waiters must learn from it
	defer pool.Close()

	start := time.Now()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, _, err := pool.Get(context.Background(), srv, 0)
			errs <- err
		}()
	}
	var codes []string
	for range 4 {
		select {
		case err := <-errs:
			var te *transport.Error
			if !errors.As(err, &te) {
				t.Fatalf("caller got %v, want the dial's *transport.Error", err)
			}
			codes = append(codes, te.Code)
		case <-time.After(5 * time.Second):
			t.Fatal("a caller is stuck behind the black hole")
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("4 callers took %v: they failed in turn, not at once", took)
	}
	if silent.Connections() != 1 {
		t.Errorf("%d connections to the black hole for 4 callers, want 1", silent.Connections())
	}
	t.Logf("codes %v after %v", codes, time.Since(start))
	if pool.Open() != 0 {
		t.Errorf("open = %d after the failed dial", pool.Open())
	}
}

// An account holds at most its cap of sessions and as many waiting
// callers; the next caller is told at once that the account is busy, and a
// waiter that gets nothing within the pool's wait is told so too.
func TestPoolBoundsWaiting(t *testing.T) {
	_, d, srv := testAccount(t)
	pool := NewPool(d.Dial, 1, time.Minute)
	pool.maxWait = 300 * time.Millisecond
	defer pool.Close()
	held, _, err := pool.Get(context.Background(), srv, 0)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		_, _, err := pool.Get(context.Background(), srv, 0)
		waited <- err
	}()
	time.Sleep(50 * time.Millisecond) // the waiter is in line
	if !pool.Busy(srv, 0) {
		t.Error("Busy is false with the session held and its one waiter in line")
	}
	start := time.Now()
	if _, _, err := pool.Get(context.Background(), srv, 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("a caller past the cap and its waiter: %v, want ErrBusy", err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("ErrBusy took %v, want at once", took)
	}
	if err := <-waited; !errors.Is(err, ErrBusy) {
		t.Fatalf("a waiter past the pool's wait: %v, want ErrBusy", err)
	}
	// Another tenant's account with the same server and login is its own.
	other := srv
	other.Tenant = "globex"
	if pool.Busy(other, 0) {
		t.Error("another tenant's account reads busy")
	}
	c, _, err := pool.Get(context.Background(), other, 0)
	if err != nil {
		t.Fatalf("another tenant waited on the first: %v", err)
	}
	pool.Put(c, true)
	pool.Put(held, true)
	if pool.Open() != 2 {
		t.Errorf("open = %d, want 2", pool.Open())
	}
}

// Idle sessions are bounded across accounts: beyond the bound a session
// given back is closed.
func TestPoolBoundsIdleSessions(t *testing.T) {
	s, d, srv := testAccount(t)
	pool := NewPool(d.Dial, 1, time.Minute)
	pool.maxIdle = 1
	defer pool.Close()
	other := srv
	other.Tenant = "globex"
	a, _, err := pool.Get(context.Background(), srv, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := pool.Get(context.Background(), other, 0)
	if err != nil {
		t.Fatal(err)
	}
	pool.Put(a, true)
	pool.Put(b, true)
	if pool.Open() != 1 {
		t.Fatalf("open = %d with an idle bound of 1", pool.Open())
	}
	deadline := time.Now().Add(2 * time.Second)
	for s.OpenConnections() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("server sees %d connections, want 1", s.OpenConnections())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// raise sets peak to n if n is higher.
func raise(peak *atomic.Int32, n int32) {
	for {
		p := peak.Load()
		if n <= p || peak.CompareAndSwap(p, n) {
			return
		}
	}
}
