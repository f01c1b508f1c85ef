package oauth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/egress"
	"github.com/outbound-mail/outbound/internal/oauthtest"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/tenant"
)

func mustSealer(t *testing.T) *seal.Sealer {
	t.Helper()
	k, _ := seal.ParseKey(seal.NewKey())
	s, err := seal.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTokens(t *testing.T, rdb redis.UniversalClient, ts *oauthtest.Server, sealer *seal.Sealer, rotated RotateFunc) *Tokens {
	t.Helper()
	return New(rdb, sealer, (&egress.Guard{AllowPrivate: true}).HTTPClient(ts.CA.Pool(), 15*time.Second), rotated)
}

func appGrant(ts *oauthtest.Server) Grant {
	return Grant{TenantID: "contoso", Version: 1, OAuth: tenant.OAuth{Flow: tenant.FlowClientCredentials, TokenURL: ts.URL(),
		ClientID: "app", ClientSecret: secret.New("app-secret"), Scope: "https://outlook.office365.com/.default"}}
}

func TestClientCredentialsCachedAndShared(t *testing.T) {
	ts := oauthtest.Start(t, oauthtest.Options{ClientID: "app", ClientSecret: "app-secret"})
	rdb := redistest.Start(t).Client(t)
	sealer := mustSealer(t)
	replicas := []*Tokens{newTokens(t, rdb, ts, sealer, nil), newTokens(t, rdb, ts, sealer, nil)}

	var wg sync.WaitGroup
	tokens := make(chan string, 40)
	for i := range 40 {
		wg.Go(func() {
			tok, err := replicas[i%2].Token(context.Background(), appGrant(ts))
			if err != nil {
				t.Error(err)
				return
			}
			tokens <- tok.Reveal()
		})
	}
	wg.Wait()
	close(tokens)
	first := ""
	for tok := range tokens {
		if first == "" {
			first = tok
		}
		if tok != first || !ts.Valid(tok) {
			t.Fatalf("tokens differ or are invalid: %q %q", first, tok)
		}
	}
	if n := ts.Requests(); n != 1 {
		t.Fatalf("40 calls on two replicas made %d token requests, want 1", n)
	}
	keys := rdb.Keys(context.Background(), "outbound:oauth:*").Val()
	for _, k := range keys {
		if v := rdb.Get(context.Background(), k).Val(); strings.Contains(v, first) {
			t.Errorf("%s holds the access token in clear text", k)
		}
	}

	// A refused token is forgotten and the next call fetches another.
	if err := replicas[0].Forget(context.Background(), appGrant(ts)); err != nil {
		t.Fatal(err)
	}
	tok, err := replicas[1].Token(context.Background(), appGrant(ts))
	if err != nil || tok.Reveal() == first || ts.Requests() != 2 {
		t.Fatalf("after Forget: %v, %d requests", err, ts.Requests())
	}
	// A new profile version does not reuse the old version's token.
	g := appGrant(ts)
	g.Version = 2
	if tok2, _ := replicas[0].Token(context.Background(), g); tok2.Reveal() == tok.Reveal() {
		t.Fatal("version 2 reused version 1's token")
	}
}

func TestExpiryThenRefresh(t *testing.T) {
	// Tokens live 61.5s; the cache drops them a minute early: 1.5s.
	ts := oauthtest.Start(t, oauthtest.Options{ClientID: "app", ClientSecret: "app-secret", Lifetime: 61500 * time.Millisecond})
	tokens := newTokens(t, redistest.Start(t).Client(t), ts, mustSealer(t), nil)
	a, err := tokens.Token(context.Background(), appGrant(ts))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := tokens.Token(context.Background(), appGrant(ts)); b.Reveal() != a.Reveal() {
		t.Fatal("not cached")
	}
	time.Sleep(1600 * time.Millisecond)
	b, err := tokens.Token(context.Background(), appGrant(ts))
	if err != nil || b.Reveal() == a.Reveal() || ts.Requests() != 2 {
		t.Fatalf("after expiry: %v, %d requests", err, ts.Requests())
	}
}

func TestRefreshTokenRotationAndRevocation(t *testing.T) {
	ts := oauthtest.Start(t, oauthtest.Options{ClientID: "web", ClientSecret: "web-secret", RefreshTokens: []string{"rt-1"}, Rotate: true})
	var rotatedTo secret.String
	tokens := newTokens(t, redistest.Start(t).Client(t), ts, mustSealer(t),
		func(_ context.Context, tenantID string, version int64, rt secret.String) error {
			if tenantID != "acme" || version != 3 {
				t.Errorf("rotated for %s v%d", tenantID, version)
			}
			rotatedTo = rt
			return nil
		})
	g := Grant{TenantID: "acme", Version: 3, OAuth: tenant.OAuth{Flow: tenant.FlowRefreshToken, TokenURL: ts.URL(),
		ClientID: "web", ClientSecret: secret.New("web-secret"), RefreshToken: secret.New("rt-1"), Scope: "https://mail.google.com/"}}
	tok, err := tokens.Token(context.Background(), g)
	if err != nil || !ts.Valid(tok.Reveal()) {
		t.Fatalf("refresh flow: %v", err)
	}
	if rotatedTo.IsZero() || rotatedTo.Reveal() == "rt-1" {
		t.Fatalf("rotated refresh token not stored: %q", rotatedTo.Reveal())
	}

	// The old refresh token is retired: invalid_grant, with a hint.
	tokens.Forget(context.Background(), g)
	_, err = tokens.Token(context.Background(), g)
	var oe *Error
	if !errors.As(err, &oe) || oe.Code != "invalid_grant" || oe.Temporary() || !strings.Contains(oe.Hint(), "Authorize the app again") {
		t.Fatalf("retired refresh token: %v", err)
	}
	if strings.Contains(err.Error(), "rt-1") || strings.Contains(err.Error(), "web-secret") {
		t.Fatalf("error leaks a secret: %v", err)
	}
	g.RefreshToken = rotatedTo
	if _, err := tokens.Token(context.Background(), g); err != nil {
		t.Fatalf("rotated refresh token refused: %v", err)
	}
}

func TestTokenErrors(t *testing.T) {
	ts := oauthtest.Start(t, oauthtest.Options{ClientID: "app", ClientSecret: "app-secret"})
	rdb := redistest.Start(t).Client(t)
	g := appGrant(ts)
	g.ClientSecret = secret.New("wrong")
	_, err := newTokens(t, rdb, ts, mustSealer(t), nil).Token(context.Background(), g)
	var oe *Error
	if !errors.As(err, &oe) || oe.Code != "invalid_client" || oe.Status != 401 || !strings.Contains(oe.Hint(), "client secret") {
		t.Fatalf("wrong secret: %v", err)
	}
	// Token endpoints are user input: the egress guard applies.
	guarded := New(rdb, mustSealer(t), (&egress.Guard{}).HTTPClient(ts.CA.Pool(), 15*time.Second), nil)
	before := ts.Requests()
	_, err = guarded.Token(context.Background(), appGrant(ts))
	if !errors.As(err, &oe) || !errors.Is(err, egress.ErrDenied) || !oe.Temporary() && oe.Code != "" {
		t.Fatalf("loopback token endpoint without AllowPrivate: %v", err)
	}
	if ts.Requests() != before {
		t.Fatal("the guard let the token request through")
	}
}
