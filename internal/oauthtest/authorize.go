package oauthtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The authorization code grant (RFC 6749, 4.1) with PKCE (RFC 7636) and
// OpenID Connect ID tokens, as a connect page's "Sign in with ..." uses
// it: /authorize consents at once (or refuses, when told to) and sends
// the browser back with a code; /token redeems the code once, checking
// the S256 challenge against the verifier; the ID token is RS256-signed
// with a key published at /jwks.

// signIn is the authorization side's state, guarded by Server.mu.
type signIn struct {
	key     *rsa.PrivateKey
	codes   map[string]grant
	deny    bool
	as      string // the account that signs in; "" is the login_hint
	asked   []url.Values
	idTTL   time.Duration
	spoiled bool // sign ID tokens with another key
}

// grant is an issued code waiting to be redeemed.
type grant struct {
	clientID, redirect, challenge, email string
}

const keyID = "test-key-1"

func newSignIn(tb testing.TB) *signIn {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return &signIn{key: key, codes: map[string]grant{}, idTTL: time.Hour}
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/authorize":
		s.authorize(w, r)
	case "/jwks":
		s.jwks(w)
	default:
		s.token(w, r)
	}
}

// AuthURL is the authorization endpoint, JWKSURL the signing keys' and
// Issuer the ID tokens' "iss".
func (s *Server) AuthURL() string { return s.srv.URL + "/authorize" }
func (s *Server) JWKSURL() string { return s.srv.URL + "/jwks" }
func (s *Server) Issuer() string  { return s.srv.URL }

// DenyConsent makes the person refuse at the consent screen
// (error=access_denied) from now on, or consent again with false.
func (s *Server) DenyConsent(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signIn.deny = deny
}

// SignInAs makes email the account that signs in, whatever the login
// hint said; "" goes back to the hinted one.
func (s *Server) SignInAs(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signIn.as = email
}

// ForgeIDTokens signs ID tokens with a key the JWKS does not hold.
func (s *Server) ForgeIDTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signIn.spoiled = true
}

// Authorizations are the query strings of the authorization requests
// served so far.
func (s *Server) Authorizations() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.signIn.asked...)
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	s.signIn.asked = append(s.signIn.asked, q)
	back, err := url.Parse(q.Get("redirect_uri"))
	// A real server shows its own error page for these and never
	// redirects: the redirect URI is not to be trusted yet.
	switch {
	case err != nil || back.Host == "":
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	case q.Get("client_id") != s.opts.ClientID:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	answer := back.Query()
	answer.Set("state", q.Get("state"))
	switch {
	case q.Get("response_type") != "code":
		answer.Set("error", "unsupported_response_type")
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		answer.Set("error", "invalid_request")
		answer.Set("error_description", "PKCE with S256 is required")
	case s.signIn.deny:
		answer.Set("error", "access_denied")
		answer.Set("error_description", "The user denied the request.")
	default:
		email := s.signIn.as
		if email == "" {
			email = q.Get("login_hint")
		}
		code := "code-" + random()
		s.signIn.codes[code] = grant{clientID: q.Get("client_id"), redirect: q.Get("redirect_uri"),
			challenge: q.Get("code_challenge"), email: email}
		answer.Set("code", code)
	}
	back.RawQuery = answer.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// redeem answers the authorization_code grant into resp; false when it
// already wrote an error. Called with s.mu held.
func (s *Server) redeem(w http.ResponseWriter, r *http.Request, clientID string, resp map[string]any) bool {
	code := r.PostForm.Get("code")
	g, ok := s.signIn.codes[code]
	delete(s.signIn.codes, code) // a code is good once (RFC 6749, 4.1.2)
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case !ok || g.clientID != clientID || g.redirect != r.PostForm.Get("redirect_uri"):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Malformed auth code.")
		return false
	case subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid code verifier.")
		return false
	}
	rt := "rt-" + random()
	s.refresh[rt] = true
	resp["refresh_token"] = rt
	resp["id_token"] = s.idToken(clientID, g.email)
	return true
}

func (s *Server) idToken(clientID, email string) string {
	now := time.Now()
	claims := map[string]any{"iss": s.Issuer(), "aud": clientID, "sub": "user-" + random(), "email": email,
		"email_verified": true, "iat": now.Unix(), "exp": now.Add(s.signIn.idTTL).Unix()}
	key := s.signIn.key
	if s.signIn.spoiled {
		key, _ = rsa.GenerateKey(rand.Reader, 2048)
	}
	return sign(key, map[string]any{"alg": "RS256", "typ": "JWT", "kid": keyID}, claims)
}

func sign(key *rsa.PrivateKey, header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (s *Server) jwks(w http.ResponseWriter) {
	s.mu.Lock()
	pub := s.signIn.key.PublicKey
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "RSA", "use": "sig", "alg": "RS256",
		"kid": keyID, "n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}}})
}
