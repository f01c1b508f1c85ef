package connect

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

func mustJWT(t *testing.T, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestVerifyIDToken(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1",
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes())}}})
	}))
	defer jwks.Close()
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": "https://accounts.google.com", "aud": "app", "exp": now.Add(time.Hour).Unix(),
			"email": "a@b.example", "email_verified": true}
	}
	rs256 := map[string]any{"alg": "RS256", "kid": "k1"}
	with := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	for name, tc := range map[string]struct {
		key    *rsa.PrivateKey
		header map[string]any
		claims map[string]any
		issuer string
		ok     bool
	}{
		"good":                               {key, rs256, good(), "", true},
		"audience list":                      {key, rs256, with("aud", []string{"other", "app"}), "", true},
		"other key":                          {other, rs256, good(), "", false},
		"unknown kid":                        {key, map[string]any{"alg": "RS256", "kid": "k2"}, good(), "", false},
		"alg none":                           {key, map[string]any{"alg": "none", "kid": "k1"}, good(), "", false},
		"HS256":                              {key, map[string]any{"alg": "HS256", "kid": "k1"}, good(), "", false},
		"issuer":                             {key, rs256, with("iss", "https://evil.example"), "", false},
		"audience":                           {key, rs256, with("aud", "someone-else"), "", false},
		"expired":                            {key, rs256, with("exp", now.Add(-2*time.Minute).Unix()), "", false},
		"clock leeway":                       {key, rs256, with("exp", now.Add(-30*time.Second).Unix()), "", true},
		"Google's issuer without its scheme": {key, rs256, with("iss", "accounts.google.com"), "", true},
		"no exp":                             {key, rs256, with("exp", 0), "", false},
		"unverified":                         {key, rs256, with("email_verified", false), "", false},
		"no email":                           {key, rs256, with("email", ""), "", false},
		"tenant issuer":                      {key, rs256, with("iss", "https://login.microsoftonline.com/t1/v2.0"), "ms", false},
		"tenant issuer 2":                    {key, rs256, map[string]any{"iss": "https://login.microsoftonline.com/t1/v2.0", "tid": "t1", "aud": "app", "exp": now.Add(time.Hour).Unix(), "preferred_username": "a@b.example"}, "ms", true},
	} {
		t.Run(name, func(t *testing.T) {
			issuer := "https://accounts.google.com"
			if tc.issuer == "ms" {
				issuer = "https://login.microsoftonline.com/{tid}/v2.0"
			}
			email, err := verifyIDToken(t.Context(), signingKeys(jwks.Client(), jwks.URL), mustJWT(t, tc.key, tc.header, tc.claims), issuer, "app", now)
			if tc.ok != (err == nil) || (tc.ok && email != "a@b.example") {
				t.Errorf("email %q, error %v", email, err)
			}
			if !tc.ok && !errors.Is(err, errIDToken) {
				t.Errorf("error %v is not errIDToken", err)
			}
		})
	}
}

// The platform's keys are fetched once and kept; a token signed with a
// key not seen (the platform rotated its keys) fetches them again.
func TestSigningKeysAreKeptUntilRotated(t *testing.T) {
	first, _ := rsa.GenerateKey(rand.Reader, 2048)
	second, _ := rsa.GenerateKey(rand.Reader, 2048)
	var fetches atomic.Int32
	var published atomic.Pointer[map[string]*rsa.PrivateKey]
	published.Store(&map[string]*rsa.PrivateKey{"k1": first})
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		var keys []map[string]string
		for kid, k := range *published.Load() {
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid,
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	defer jwks.Close()
	keys := signingKeys(jwks.Client(), jwks.URL)
	now := time.Now()
	claims := map[string]any{"iss": "https://accounts.google.com", "aud": "app", "exp": now.Add(time.Hour).Unix(), "email": "a@b.example"}
	verify := func(key *rsa.PrivateKey, kid string) {
		t.Helper()
		raw := mustJWT(t, key, map[string]any{"alg": "RS256", "kid": kid}, claims)
		if _, err := verifyIDToken(t.Context(), keys, raw, "https://accounts.google.com", "app", now); err != nil {
			t.Fatalf("kid %s: %v", kid, err)
		}
	}
	verify(first, "k1")
	verify(first, "k1")
	if n := fetches.Load(); n != 1 {
		t.Fatalf("two sign-ins fetched the keys %d times, want once", n)
	}
	published.Store(&map[string]*rsa.PrivateKey{"k1": first, "k2": second})
	verify(second, "k2")
	if n := fetches.Load(); n != 2 {
		t.Fatalf("a rotated key: %d fetches in all, want 2", n)
	}
}

// The page keeps one key set per JWKS URL, so sign-ins through any of a
// platform's providers share its fetched keys; another URL has its own.
func TestPageKeepsOneKeySetPerURL(t *testing.T) {
	p := &Page{client: http.DefaultClient, keys: map[string]*oidc.RemoteKeySet{}}
	google, again := p.keySet("https://keys.example/google"), p.keySet("https://keys.example/google")
	microsoft := p.keySet("https://keys.example/microsoft")
	if google != again {
		t.Error("a second sign-in made a new key set for the same URL: its keys would be fetched again")
	}
	if microsoft == google {
		t.Error("two JWKS URLs share one key set")
	}
}
