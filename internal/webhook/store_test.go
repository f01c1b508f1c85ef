package webhook

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
)

// Listens follows the webhooks as any replica writes them: two stores on
// one Redis stand for two replicas, each with its cache.
func TestListensFollowsWritesOfAnyReplica(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	key, _ := seal.ParseKey(seal.NewKey())
	sealer, _ := seal.New(key)
	writer, reader := NewStore(rdb, sealer), NewStore(rdb, sealer)
	for _, s := range []*Store{writer, reader} {
		stop := s.UseCache(time.Hour) // only invalidation can refresh it in time
		t.Cleanup(func() { stop() })
	}
	ctx := context.Background()
	listens := func(tenant, event string) bool {
		t.Helper()
		ok, err := reader.Listens(ctx, tenant, event)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not seen in 5s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	if listens("acme", "message.failed") {
		t.Fatal("listens with no webhook")
	}
	acme := Hook{Name: "acme-failures", URL: "https://hooks.example/acme", Events: []string{"message.failed"},
		TenantID: "acme", Secret: secret.New("whsec_test")}
	if _, err := writer.Put(ctx, acme); err != nil {
		t.Fatal(err)
	}
	eventually("a new tenant webhook", func() bool { return listens("acme", "message.failed") })
	if listens("acme", "message.sent") || listens("beta", "message.failed") {
		t.Error("listens for an event type or tenant the webhook did not ask for")
	}

	all := Hook{Name: "all-sent", URL: "https://hooks.example/all", Events: []string{"message.sent"},
		Secret: secret.New("whsec_test")}
	if _, err := writer.Put(ctx, all); err != nil {
		t.Fatal(err)
	}
	eventually("a webhook for every tenant", func() bool { return listens("beta", "message.sent") })

	for _, name := range []string{acme.Name, all.Name} {
		if err := writer.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	eventually("deleted webhooks", func() bool { return !listens("acme", "message.failed") && !listens("beta", "message.sent") })
}

// A deleted webhook takes its delivery log with it, at once and for good:
// an attempt finishing after the delete does not bring the log back, and a
// new webhook of the same name starts with an empty one. Run on a single
// Redis and on a Cluster (the hook list and the log share a slot).
func TestDeleteDropsTheDeliveryLog(t *testing.T) {
	key, _ := seal.ParseKey(seal.NewKey())
	sealer, _ := seal.New(key)
	for name, rdb := range map[string]redis.UniversalClient{
		"single":  redistest.Start(t).Client(t),
		"cluster": redistest.StartCluster(t, 3).Client(t),
	} {
		t.Run(name, func(t *testing.T) {
			store := NewStore(rdb, sealer)
			ctx := context.Background()
			hook := Hook{Name: "ops", URL: "https://hooks.example/x", Events: []string{"message.sent"}, Secret: secret.New("whsec_test")}
			if _, err := store.Put(ctx, hook); err != nil {
				t.Fatal(err)
			}
			if err := store.record(ctx, "ops", Delivery{EventID: "evt_1", Attempt: 1, Error: "receiver answered 500"}); err != nil {
				t.Fatal(err)
			}
			if ds, _, _ := store.Deliveries(ctx, "ops", "", 10); len(ds) != 1 {
				t.Fatalf("deliveries before delete: %+v", ds)
			}
			if err := store.Delete(ctx, "ops"); err != nil {
				t.Fatal(err)
			}
			if n := rdb.Exists(ctx, logKey("ops")).Val(); n != 0 {
				t.Fatal("the delivery log outlived its webhook")
			}
			// An attempt that was in flight during the delete.
			if err := store.record(ctx, "ops", Delivery{EventID: "evt_2", Attempt: 1}); err != nil {
				t.Fatal(err)
			}
			if n := rdb.Exists(ctx, logKey("ops")).Val(); n != 0 {
				t.Fatal("an attempt after the delete wrote the log again")
			}
			if _, err := store.Put(ctx, hook); err != nil {
				t.Fatal(err)
			}
			if ds, _, _ := store.Deliveries(ctx, "ops", "", 10); len(ds) != 0 {
				t.Fatalf("a new webhook of the same name shows the old one's deliveries: %+v", ds)
			}
			if err := store.Delete(ctx, "ops"); err != nil {
				t.Fatal(err)
			}
			if err := store.Delete(ctx, "ops"); err != ErrNotFound {
				t.Fatalf("second delete: %v", err)
			}
		})
	}
}
