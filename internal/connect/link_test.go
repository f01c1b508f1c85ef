package connect

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/validation"
)

func mustLinks(t *testing.T) *Links {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	return NewLinks(rdb, "https://mail.example/", []string{"https://app.example/settings/", "http://127.0.0.1:3000/back"})
}

func fieldCode(t *testing.T, err error, field string) string {
	t.Helper()
	var verr *validation.Error
	if !errors.As(err, &verr) {
		t.Fatalf("want a validation error, got %v", err)
	}
	for _, f := range verr.Fields {
		if f.Field == field {
			return f.Code
		}
	}
	t.Fatalf("%v names no %s", err, field)
	return ""
}

func TestCreateRefusesReturnURLsOutsideTheList(t *testing.T) {
	l := mustLinks(t)
	ctx := context.Background()
	for _, bad := range []string{
		"https://app.example/other",
		"https://app.example.evil.test/settings/",
		"https://evil.test/?https://app.example/settings/",
		"http://app.example/settings/",
		"https://user@app.example/settings/x",
		"//app.example/settings/",
		"https://app.example/settings/../admin",
		"https://app.example/settings/%2e%2e/admin",
		"javascript:alert(1)//https://app.example/settings/",
	} {
		_, _, err := l.Create(ctx, "acme", bad, "", 0)
		if got := fieldCode(t, err, "return_url"); got != "return_url_not_allowed" {
			t.Errorf("%q: code %s", bad, got)
		}
	}
	_, _, err := l.Create(ctx, "acme", "", "fr", time.Second)
	if fieldCode(t, err, "return_url") != "required" || fieldCode(t, err, "locale") != "invalid_value" ||
		fieldCode(t, err, "expires_in") != "out_of_range" {
		t.Errorf("all three fields: %v", err)
	}
}

func TestLinkLifecycle(t *testing.T) {
	l := mustLinks(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	ctx := context.Background()
	u, expires, err := l.Create(ctx, "acme", "https://app.example/settings/email?x=1", "ar", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	token, ok := strings.CutPrefix(u, "https://mail.example/connect/")
	if !ok || len(token) < 40 || !expires.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("link %q expires %v", u, expires)
	}
	// Redis holds a hash of the token, never the token.
	keys := l.rdb.Keys(ctx, "*").Val()
	if len(keys) != 1 || strings.Contains(keys[0], token) {
		t.Fatalf("keys %q", keys)
	}
	for _, v := range l.rdb.HGetAll(ctx, keys[0]).Val() {
		if strings.Contains(v, token) {
			t.Fatal("the token is stored")
		}
	}
	if ttl := l.rdb.TTL(ctx, keys[0]).Val(); ttl <= 10*time.Minute || ttl > 10*time.Minute+afterlife {
		t.Errorf("TTL %v", ttl)
	}

	k, err := l.Open(ctx, token)
	if err != nil || k.TenantID != "acme" || k.Locale != "ar" || k.CSRF == "" || k.ReturnURL != "https://app.example/settings/email?x=1" {
		t.Fatalf("open: %+v %v", k, err)
	}
	if _, err := l.Open(ctx, token+"x"); !errors.Is(err, ErrLinkNotFound) {
		t.Fatalf("another token: %v", err)
	}
	for i := range MaxAttempts {
		if err := l.Spend(ctx, k); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	if err := l.Spend(ctx, k); !errors.Is(err, ErrLinkUsedUp) {
		t.Fatalf("attempt %d: %v", MaxAttempts+1, err)
	}
	if _, err := l.Open(ctx, token); !errors.Is(err, ErrLinkUsedUp) {
		t.Fatalf("open a used-up link: %v", err)
	}
	l.rdb.Del(ctx, keys[0])
	if err := l.Spend(ctx, k); !errors.Is(err, ErrLinkNotFound) || l.rdb.Exists(ctx, keys[0]).Val() != 0 {
		t.Fatalf("spend on a link Redis dropped: %v", err)
	}

	u, _, _ = l.Create(ctx, "acme", "https://app.example/settings/", "", 0)
	token = strings.TrimPrefix(u, "https://mail.example/connect/")
	now = now.Add(time.Hour)
	if k, err := l.Open(ctx, token); !errors.Is(err, ErrLinkExpired) || k.ReturnURL == "" {
		t.Fatalf("open at its expiry: %+v %v", k, err)
	}
	now = now.Add(-time.Minute)
	k, _ = l.Open(ctx, token)
	if err := l.Finish(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(ctx, token); !errors.Is(err, ErrLinkDone) {
		t.Fatalf("open a done link: %v", err)
	}
}

func TestPolicy(t *testing.T) {
	l := NewLinks(nil, "https://mail.example", []string{"https://app.example/a/", "https://app.example/b/", "http://localhost:3000/x"})
	got := policy(l.origins())
	for _, want := range []string{"default-src 'self'", "frame-ancestors https://app.example http://localhost:3000", "form-action 'self' https://app.example http://localhost:3000"} {
		if !strings.Contains(got, want) {
			t.Errorf("policy %q lacks %q", got, want)
		}
	}
	if got := policy(nil); !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("no return URLs: %q", got)
	}
}
