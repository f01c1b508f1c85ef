package tenant

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
)

func mustSealer(t *testing.T, keys ...string) *seal.Sealer {
	t.Helper()
	var raw [][]byte
	for _, k := range keys {
		b, err := seal.ParseKey(k)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b)
	}
	s, err := seal.New(raw[0], raw[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustProfile(t *testing.T) Profile {
	t.Helper()
	p, err := Build("acme", gmailInput(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStoreRoundTrip(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		store := NewStore(rdb, mustSealer(t, seal.NewKey()))

		if _, err := store.Get(ctx, "acme"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get before Put: %v", err)
		}
		stored, err := store.Put(ctx, mustProfile(t), 0)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Version != 1 || stored.CreatedAt.IsZero() {
			t.Errorf("stored = %+v", stored)
		}
		got, err := store.Get(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if got.Email != "acme@gmail.com" || got.Password.Reveal() != "abcdefghijklmnop" || got.Host != "smtp.gmail.com" ||
			got.Port != 465 || got.Security != SecurityTLS || !got.Enabled || got.Version != 1 ||
			!got.CreatedAt.Equal(stored.CreatedAt) {
			t.Errorf("got %+v", got)
		}

		raw, err := rdb.HGetAll(ctx, Key("acme")).Result()
		if err != nil {
			t.Fatal(err)
		}
		for field, v := range raw {
			if strings.Contains(v, "abcdefghijklmnop") || strings.Contains(v, "abcd efgh") {
				t.Errorf("raw hash field %s holds the password in clear: %q", field, v)
			}
		}

		// A second write must name the version it replaces.
		if _, err := store.Put(ctx, got, 0); !errors.Is(err, ErrVersionConflict) {
			t.Errorf("Put as new over existing: %v", err)
		}
		got.SenderName = "Renamed"
		v2, err := store.Put(ctx, got, 1)
		if err != nil || v2.Version != 2 || !v2.CreatedAt.Equal(stored.CreatedAt) {
			t.Fatalf("second Put: %+v %v", v2, err)
		}
		if _, err := store.Put(ctx, got, 1); !errors.Is(err, ErrVersionConflict) {
			t.Errorf("stale Put: %v", err)
		}

		if err := store.Delete(ctx, "acme", 1); !errors.Is(err, ErrVersionConflict) {
			t.Errorf("stale Delete: %v", err)
		}
		if err := store.Delete(ctx, "acme", 2); err != nil {
			t.Fatal(err)
		}
		if err := store.Delete(ctx, "acme", 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete of missing: %v", err)
		}
	})
}

func TestStoreSealedPasswordIsBoundToTenant(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	store := NewStore(rdb, mustSealer(t, seal.NewKey()))

	if _, err := store.Put(ctx, mustProfile(t), 0); err != nil {
		t.Fatal(err)
	}
	other := mustProfile(t)
	other.TenantID = "other"
	if _, err := store.Put(ctx, other, 0); err != nil {
		t.Fatal(err)
	}
	sealed := rdb.HGet(ctx, Key("acme"), "password").Val()
	rdb.HSet(ctx, Key("other"), "password", sealed)
	if _, err := store.Get(ctx, "other"); err == nil {
		t.Fatal("a password copied from another tenant opened")
	} else if strings.Contains(err.Error(), "abcdefghijklmnop") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestStoreKeyRotation(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	oldKey, newKey := seal.NewKey(), seal.NewKey()

	before := NewStore(rdb, mustSealer(t, oldKey))
	if _, err := before.Put(ctx, mustProfile(t), 0); err != nil {
		t.Fatal(err)
	}
	after := NewStore(rdb, mustSealer(t, newKey, oldKey))
	p, err := after.Get(ctx, "acme")
	if err != nil || p.Password.Reveal() != "abcdefghijklmnop" {
		t.Fatalf("rotated store cannot read old profile: %v", err)
	}
	if after.sealer.IsCurrent(rdb.HGet(ctx, Key("acme"), "password").Val()) {
		t.Fatal("profile reported as sealed with the new key before any write")
	}
	if _, err := after.Put(ctx, p, p.Version); err != nil {
		t.Fatal(err)
	}
	if !after.sealer.IsCurrent(rdb.HGet(ctx, Key("acme"), "password").Val()) {
		t.Error("profile not re-sealed with the current key when written")
	}
	newOnly := NewStore(rdb, mustSealer(t, newKey))
	if _, err := newOnly.Get(ctx, "acme"); err != nil {
		t.Errorf("re-sealed profile does not open with the new key alone: %v", err)
	}
}

func TestStoreLastErrorFollowsVersion(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		store := NewStore(rdb, mustSealer(t, seal.NewKey()))
		p, err := store.Put(ctx, mustProfile(t), 0)
		if err != nil {
			t.Fatal(err)
		}
		le := &LastError{Code: "auth_failed", SMTPCode: 535, EnhancedCode: "5.7.8", Message: "no", At: time.Now().UTC()}
		if err := store.SetLastError(ctx, "acme", p.Version, le); err != nil {
			t.Fatal(err)
		}
		got, _ := store.Get(ctx, "acme")
		if got.LastError == nil || got.LastError.SMTPCode != 535 {
			t.Fatalf("last error not recorded: %+v", got.LastError)
		}
		// An error from an older version does not stick to the new one.
		p2, _ := store.Put(ctx, got, got.Version)
		if err := store.SetLastError(ctx, "acme", p.Version, le); err != nil {
			t.Fatal(err)
		}
		if got, _ := store.Get(ctx, "acme"); got.LastError != nil {
			t.Errorf("stale error recorded on version %d", p2.Version)
		}
		store.SetLastError(ctx, "acme", p2.Version, le)
		store.SetLastError(ctx, "acme", p2.Version, nil)
		if got, _ := store.Get(ctx, "acme"); got.LastError != nil {
			t.Error("last error not cleared")
		}
	})
}

func TestStoreDeliveryLimits(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	store := NewStore(srv.Client(t), mustSealer(t, seal.NewKey()))
	in := gmailInput()
	in.RateLimit = &RateLimit{PerMinute: 20, PerDay: 500}
	in.MaxConnections, in.PacePerMinute = 2, 30
	p, err := Build("acme", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, p, 0); err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got.RateLimit == nil || *got.RateLimit != (RateLimit{20, 500}) || got.MaxConnections != 2 || got.PacePerMinute != 30 {
		t.Fatalf("got %+v %+v", got, got.RateLimit)
	}
	got.RateLimit = nil
	if _, err := store.Put(ctx, got, got.Version); err != nil {
		t.Fatal(err)
	}
	if again, _ := store.Get(ctx, "acme"); again.RateLimit != nil {
		t.Fatal("rate limit not removed")
	}
}

// Tenants loaded at the same time (a burst of new tenants, or a restart's
// empty cache) share pipelines; a profile that does not open fails alone.
func TestLoadsAtOnceShareRoundTrips(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	store := NewStore(rdb, mustSealer(t, seal.NewKey()))
	const n = 200
	for i := range n {
		p, err := Build("t"+strconv.Itoa(i), gmailInput(), nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Username = "user" + strconv.Itoa(i) + "@gmail.com"
		if _, err := store.Put(ctx, p, 0); err != nil {
			t.Fatal(err)
		}
	}
	// t7 gets t8's sealed password, which is bound to t8 and does not open.
	rdb.HSet(ctx, Key("t7"), "password", rdb.HGet(ctx, Key("t8"), "password").Val())

	errs, pipelines := redistest.ConcurrentPipelines(rdb, n, func(i int) error {
		p, found, st, err := store.Load(ctx, "t"+strconv.Itoa(i))
		if err == nil && (!found || p.Username != "user"+strconv.Itoa(i)+"@gmail.com" || st.Paused()) {
			err = fmt.Errorf("t%d loaded as %+v %v %+v", i, p, found, st)
		}
		return err
	})
	for i, err := range errs {
		if (i == 7) != (err != nil) {
			t.Errorf("t%d: %v", i, err)
		}
	}
	t.Logf("%d tenants loaded in %d pipelines", n, pipelines)
	if pipelines >= n {
		t.Errorf("%d pipelines for %d tenants: no loads were grouped", pipelines, n)
	}
}
