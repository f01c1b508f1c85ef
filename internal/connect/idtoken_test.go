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
	"testing"
	"time"
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
		"good":            {key, rs256, good(), "", true},
		"audience list":   {key, rs256, with("aud", []string{"other", "app"}), "", true},
		"other key":       {other, rs256, good(), "", false},
		"unknown kid":     {key, map[string]any{"alg": "RS256", "kid": "k2"}, good(), "", false},
		"alg none":        {key, map[string]any{"alg": "none", "kid": "k1"}, good(), "", false},
		"HS256":           {key, map[string]any{"alg": "HS256", "kid": "k1"}, good(), "", false},
		"issuer":          {key, rs256, with("iss", "https://evil.example"), "", false},
		"audience":        {key, rs256, with("aud", "someone-else"), "", false},
		"expired":         {key, rs256, with("exp", now.Add(-2*time.Minute).Unix()), "", false},
		"no exp":          {key, rs256, with("exp", 0), "", false},
		"unverified":      {key, rs256, with("email_verified", false), "", false},
		"no email":        {key, rs256, with("email", ""), "", false},
		"tenant issuer":   {key, rs256, with("iss", "https://login.microsoftonline.com/t1/v2.0"), "ms", false},
		"tenant issuer 2": {key, rs256, map[string]any{"iss": "https://login.microsoftonline.com/t1/v2.0", "tid": "t1", "aud": "app", "exp": now.Add(time.Hour).Unix(), "preferred_username": "a@b.example"}, "ms", true},
	} {
		t.Run(name, func(t *testing.T) {
			issuer := "https://accounts.google.com"
			if tc.issuer == "ms" {
				issuer = "https://login.microsoftonline.com/{tid}/v2.0"
			}
			email, err := verifyIDToken(t.Context(), jwks.Client(), mustJWT(t, tc.key, tc.header, tc.claims), jwks.URL, issuer, "app", now)
			if tc.ok != (err == nil) || (tc.ok && email != "a@b.example") {
				t.Errorf("email %q, error %v", email, err)
			}
			if !tc.ok && !errors.Is(err, errIDToken) {
				t.Errorf("error %v is not errIDToken", err)
			}
		})
	}
}
