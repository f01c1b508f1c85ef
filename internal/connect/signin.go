package connect

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/outbound-mail/outbound/internal/outage"
	"github.com/outbound-mail/outbound/internal/provider"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
	"github.com/outbound-mail/outbound/internal/validation"
)

// "Sign in with Google" and "Sign in with Microsoft": the authorization
// code grant (RFC 6749, 4.1) with PKCE S256 (RFC 7636). The page's form
// starts it (POST action=signin, CSRF-checked like every form): a random
// state and verifier are stored in Redis beside the link's hash, the
// browser gets the state and the link's token in a cookie scoped to the
// callback, and goes to the platform with the S256 challenge. The one
// callback every app registers, CallbackPath, takes the state back only
// with that cookie, exchanges the code with the verifier, reads the
// signed-in address from the ID token, and saves an xoauth2 profile with
// the refresh token through the tenant store, as Save does.

// CallbackPath is the redirect URI's path under OUTBOUND_PUBLIC_URL.
const CallbackPath = Prefix + "oauth/callback"

const (
	signInCookie = "outbound_connect_signin"
	// signInLifetime bounds a sign-in from the button to the callback.
	signInLifetime  = 10 * time.Minute
	exchangeTimeout = 30 * time.Second
)

// App is an OAuth2 app an operator registered with an identity platform
// (config's OUTBOUND_GOOGLE_CLIENT_ID and the like).
type App struct {
	// Platform is the provider table's OAuth.Platform ("google",
	// "microsoft"): the app signs in every provider on it.
	Platform     string
	ClientID     string
	ClientSecret secret.String
	// Directory fills "{directory}" in Microsoft's endpoints ("common").
	Directory string
	// AuthURL, TokenURL, JWKSURL and Issuer replace the provider table's
	// where set: tests point them at their own authorization server.
	AuthURL, TokenURL, JWKSURL, Issuer string
}

// endpoints are the app's, from the table unless replaced.
func (a App) endpoints(o *provider.OAuth) App {
	if a.AuthURL == "" {
		a.AuthURL = o.AuthURLFor(a.Directory)
	}
	if a.TokenURL == "" {
		a.TokenURL = o.TokenURLFor(a.Directory)
	}
	if a.JWKSURL == "" {
		a.JWKSURL = strings.ReplaceAll(o.JWKSURL, "{directory}", url.PathEscape(a.Directory))
	}
	if a.Issuer == "" {
		a.Issuer = o.Issuer
	}
	return a
}

// SignIn offers the sign-in for the providers on apps' platforms; client
// makes the token and key requests (the egress guard's client).
func (p *Page) SignIn(client *http.Client, apps ...App) {
	p.client, p.apps, p.keys = client, map[string]App{}, map[string]*oidc.RemoteKeySet{}
	var origins []string
	for _, a := range apps {
		p.apps[a.Platform] = a
		for _, pr := range provider.All() {
			if o := pr.OAuth; o != nil && o.Platform == a.Platform {
				if u, err := url.Parse(a.endpoints(o).AuthURL); err == nil {
					origins = append(origins, u.Scheme+"://"+u.Host)
				}
				break
			}
		}
	}
	p.csp = policy(p.links.origins(), origins...)
}

// keySet is the signing keys published at jwksURL, one key set per URL
// for the page's life, so each is fetched once (and again on rotation),
// whichever provider's sign-in first needs it.
func (p *Page) keySet(jwksURL string) *oidc.RemoteKeySet {
	p.keysMu.Lock()
	defer p.keysMu.Unlock()
	k := p.keys[jwksURL]
	if k == nil {
		k = signingKeys(p.client, jwksURL)
		p.keys[jwksURL] = k
	}
	return k
}

// appFor is the app that signs in accounts of the provider named, with
// its endpoints and the provider's OAuth entry.
func (p *Page) appFor(name string) (App, *provider.OAuth, bool) {
	pr, ok := provider.ByName(name)
	if !ok || pr.OAuth == nil {
		return App{}, nil, false
	}
	a, ok := p.apps[pr.OAuth.Platform]
	if !ok {
		return App{}, nil, false
	}
	return a.endpoints(pr.OAuth), pr.OAuth, true
}

func (p *Page) oauthConfig(a App, o *provider.OAuth) *oauth2.Config {
	return &oauth2.Config{ClientID: a.ClientID, ClientSecret: a.ClientSecret.Reveal(),
		Endpoint:    oauth2.Endpoint{AuthURL: a.AuthURL, TokenURL: a.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: p.links.publicURL + CallbackPath, Scopes: strings.Fields(o.Scope + " " + o.SignInScope)}
}

// signInState is what Redis keeps of a sign-in between the button and
// the callback. The verifier never reaches the browser.
type signInState struct {
	linkHash, verifier, provider, email string
}

func signInKey(stateHash string) string { return "outbound:connect:signin:{" + stateHash + "}" }

// beginSignIn stores a new sign-in and returns its state.
func (l *Links) beginSignIn(ctx context.Context, st signInState) (_ string, err error) {
	defer outage.Mark(&err)
	state := randomToken()
	key := signInKey(hashToken(state))
	// One transaction, so no record outlives its TTL's setting.
	_, err = l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "link", st.linkHash, "verifier", st.verifier, "provider", st.provider, "email", st.email)
		p.Expire(ctx, key, signInLifetime)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("connect: begin sign-in: %w", err)
	}
	return state, nil
}

// errNoSignIn is a state this service did not start, or one already used.
var errNoSignIn = errors.New("connect: no such sign-in")

// takeSignIn reads and deletes the sign-in of state: a state is good once.
func (l *Links) takeSignIn(ctx context.Context, state string) (_ signInState, err error) {
	defer outage.Mark(&err)
	key := signInKey(hashToken(state))
	var get *redis.MapStringStringCmd
	_, err = l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.HGetAll(ctx, key)
		p.Del(ctx, key)
		return nil
	})
	if err != nil {
		return signInState{}, fmt.Errorf("connect: take sign-in: %w", err)
	}
	h := get.Val()
	if h["link"] == "" {
		return signInState{}, errNoSignIn
	}
	return signInState{linkHash: h["link"], verifier: h["verifier"], provider: h["provider"], email: h["email"]}, nil
}

// signIn answers the sign-in button: off to the platform's consent page.
func (s *session) signIn() {
	v := s.posted()
	a, o, ok := s.appFor(v.Provider)
	if !ok {
		s.form(v, nil, nil, http.StatusOK)
		return
	}
	if !validation.IsEmail(v.Email) {
		s.form(v, []validation.Field{{Field: "email", Code: "invalid_email"}}, nil, http.StatusUnprocessableEntity)
		return
	}
	ctx := s.r.Context()
	// A sign-in counts against the link's attempts like a test.
	if err := s.links.Spend(ctx, s.link); err != nil {
		s.spendFailed(err)
		return
	}
	verifier := oauth2.GenerateVerifier()
	state, err := s.links.beginSignIn(ctx, signInState{linkHash: s.link.hash, verifier: verifier, provider: v.Provider, email: v.Email})
	if err != nil {
		s.unavailable(s.w, s.loc, err)
		return
	}
	token := strings.TrimPrefix(s.action, Prefix)
	// Lax, not Strict: the platform's redirect back is a cross-site
	// navigation, which a Strict cookie would not come with.
	http.SetCookie(s.w, &http.Cookie{Name: signInCookie, Value: state + "." + token, Path: CallbackPath, HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteLaxMode, MaxAge: int(signInLifetime.Seconds())})
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("login_hint", v.Email)}
	if o.Platform == "google" {
		// Google gives a refresh token only with offline access, and again
		// for an account that consented before only when asked to consent.
		opts = append(opts, oauth2.AccessTypeOffline, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	http.Redirect(s.w, s.r, s.oauthConfig(a, o).AuthCodeURL(state, opts...), http.StatusSeeOther)
}

func (s *session) spendFailed(err error) {
	switch {
	case errors.Is(err, ErrLinkUsedUp):
		s.renderGone(s.w, s.loc, s.link, err)
	case errors.Is(err, ErrLinkNotFound):
		s.render(s.w, gone(s.loc, "not_found", ""), http.StatusNotFound)
	default:
		s.unavailable(s.w, s.loc, err)
	}
}

// callback answers the platform's redirect back, GET CallbackPath.
func (p *Page) callback(w http.ResponseWriter, r *http.Request) (tenantID, action string) {
	loc := catalogue.Pick("", r.Header.Get("Accept-Language"))
	// The cookie is spent whatever happens: each sign-in starts afresh.
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Path: CallbackPath, MaxAge: -1, HttpOnly: true, Secure: p.secure,
		SameSite: http.SameSiteLaxMode})
	c, err := r.Cookie(signInCookie)
	cookieState, token, _ := strings.Cut(valueOf(c, err), ".")
	if token == "" {
		p.render(w, view{loc: loc, Kind: "message", Title: loc.Text("signin.state.title"), Body: loc.Text("signin.state.body")},
			http.StatusBadRequest)
		return "", "signin_no_cookie"
	}
	link, err := p.links.Open(r.Context(), token)
	switch {
	case errors.Is(err, ErrLinkNotFound):
		p.render(w, gone(loc, "not_found", ""), http.StatusNotFound)
		return "", "not_found"
	case err != nil && link.TenantID == "":
		p.unavailable(w, loc, err)
		return "", "error"
	}
	loc = catalogue.Pick(link.Locale, r.Header.Get("Accept-Language"))
	// The sign-in spent its attempt when it started: a link it used up
	// still finishes it.
	if err != nil && !errors.Is(err, ErrLinkUsedUp) {
		p.renderGone(w, loc, link, err)
		return link.TenantID, "gone"
	}
	s := &session{Page: p, w: w, r: r, link: link, loc: loc, action: Prefix + token}
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(cookieState)) != 1 {
		s.refuse("state", http.StatusBadRequest)
		return link.TenantID, "signin_bad_state"
	}
	st, err := p.links.takeSignIn(r.Context(), state)
	if errors.Is(err, errNoSignIn) || (err == nil && st.linkHash != link.hash) {
		s.refuse("state", http.StatusBadRequest)
		return link.TenantID, "signin_bad_state"
	} else if err != nil {
		p.unavailable(w, loc, err)
		return link.TenantID, "error"
	}
	if e := q.Get("error"); e != "" {
		p.log.Info("connect page: sign-in refused", "tenant_id", link.TenantID, "provider", st.provider, "oauth_error", e)
		if e == "access_denied" {
			s.refuse("denied", http.StatusForbidden)
			return link.TenantID, "signin_denied"
		}
		s.refuse("failed", http.StatusBadGateway)
		return link.TenantID, "signin_failed"
	}
	return link.TenantID, s.finishSignIn(st, q.Get("code"))
}

func valueOf(c *http.Cookie, err error) string {
	if err != nil {
		return ""
	}
	return c.Value
}

// refuse is a sign-in's refusal page, with the link's page to try again
// and the way back to the product.
func (s *session) refuse(reason string, status int, args ...any) {
	v := view{loc: s.loc, Kind: "message", Title: s.loc.Text("signin." + reason + ".title"),
		Body: s.loc.Text("signin."+reason+".body", args...), Retry: s.action, Back: returnTo(s.link, "cancelled")}
	s.render(s.w, v, status)
}

// finishSignIn exchanges the code, checks who signed in and saves the
// profile; it returns the log's action.
func (s *session) finishSignIn(st signInState, code string) string {
	a, o, ok := s.appFor(st.provider)
	if !ok || code == "" {
		s.refuse("failed", http.StatusBadGateway)
		return "signin_failed"
	}
	ctx, cancel := context.WithTimeout(s.r.Context(), exchangeTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	tok, err := s.oauthConfig(a, o).Exchange(ctx, code, oauth2.VerifierOption(st.verifier))
	if err != nil {
		s.log.Warn("connect page: sign-in exchange", "tenant_id", s.link.TenantID, "provider", st.provider, "error", exchangeError(err))
		s.refuse("failed", http.StatusBadGateway)
		return "signin_failed"
	}
	// The ID token came straight from the token endpoint over TLS, which
	// OpenID Connect (Core 1.0, 3.1.3.7) lets a client trust without a
	// signature check; it is checked all the same, so a token endpoint
	// replaced by configuration alone cannot name any account.
	raw, _ := tok.Extra("id_token").(string)
	email, err := verifyIDToken(ctx, s.keySet(a.JWKSURL), raw, a.Issuer, a.ClientID, time.Now())
	if err != nil {
		s.log.Warn("connect page: sign-in ID token", "tenant_id", s.link.TenantID, "provider", st.provider, "error", err)
		s.refuse("failed", http.StatusBadGateway)
		return "signin_failed"
	}
	if !strings.EqualFold(email, st.email) {
		s.refuse("account", http.StatusForbidden, st.email, email)
		return "signin_other_account"
	}
	if tok.RefreshToken == "" {
		s.log.Warn("connect page: sign-in gave no refresh token", "tenant_id", s.link.TenantID, "provider", st.provider)
		s.refuse("failed", http.StatusBadGateway)
		return "signin_failed"
	}
	grant := &tenant.OAuthInput{Flow: tenant.FlowRefreshToken, TokenURL: a.TokenURL, ClientID: a.ClientID,
		ClientSecret: a.ClientSecret, RefreshToken: secret.New(tok.RefreshToken), Scope: o.Scope}
	v := values{Provider: st.provider, Email: st.email, Username: st.email, Enabled: true}
	input := func(stored tenant.Profile, found bool) tenant.Input {
		vals := v
		if found {
			vals.SenderName = stored.SenderName
		}
		in := vals.input(secret.String{}, stored, found)
		in.Auth, in.OAuth = tenant.AuthXOAuth2, grant
		return in
	}
	// A grant is not yet an account that sends: Microsoft 365 turns SMTP
	// AUTH off per organisation and mailbox, Google Workspace admins can
	// turn off access for apps. So the account is tested as the password
	// path tests it, and only saved when it logs in; otherwise the form
	// says what the server answered, as a failed test does.
	if te, err := s.testGrant(input); te != nil {
		s.log.Info("connect page: sign-in test failed", "tenant_id", s.link.TenantID, "provider", st.provider,
			"code", te.Code, "smtp_code", te.SMTPCode)
		s.form(v, nil, &outcome{err: te, signedIn: true}, http.StatusOK)
		return "signin_test_failed"
	} else if err != nil {
		s.log.Error("connect page: sign-in test", "tenant_id", s.link.TenantID, "error", err)
		s.refuse("failed", http.StatusBadGateway)
		return "signin_failed"
	}
	if err := s.saveWith(s.r.Context(), input); err != nil {
		s.log.Error("connect page: sign-in save", "tenant_id", s.link.TenantID, "error", err)
		s.refuse("failed", http.StatusBadGateway)
		return "signin_failed"
	}
	if err := s.links.Finish(s.r.Context(), s.link); err != nil {
		s.log.Warn("connect page: finish link", "tenant_id", s.link.TenantID, "error", err)
	}
	http.Redirect(s.w, s.r, returnTo(s.link, "connected"), http.StatusSeeOther)
	return "signin_connected"
}

// testGrant logs in to the account the signed-in grant names, with an
// access token the grant gets: a *transport.Error is the account's answer,
// another error the service's own trouble.
func (s *session) testGrant(input func(stored tenant.Profile, found bool) tenant.Input) (*transport.Error, error) {
	stored, found, err := s.stored(s.r.Context())
	if err != nil {
		return nil, err
	}
	p, err := tenant.Build(s.link.TenantID, input(stored, found), storedOrNil(stored, found))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(s.r.Context(), verifyTimeout)
	defer cancel()
	_, err = s.verifier.Verify(ctx, p, false)
	var te *transport.Error
	if errors.As(err, &te) {
		return te, nil
	}
	return nil, err
}

// exchangeError is what the log says of a failed exchange: the
// platform's error code, never its whole answer.
func exchangeError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return "token endpoint: " + re.ErrorCode
	}
	return err.Error()
}
