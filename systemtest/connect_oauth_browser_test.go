package systemtest

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/outbound-mail/outbound/internal/app"
	"github.com/outbound-mail/outbound/internal/config"
	"github.com/outbound-mail/outbound/internal/oauthtest"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// signInRig is a connect rig whose service has a Google app (or a
// Microsoft one), pointed at a test authorization server, and an SMTP
// server standing in for the provider's, on the provider's own name and
// port (smtp.gmail.com:465 on 127.0.0.2, smtp.office365.com:587 on
// 127.0.0.3), that logs in with XOAUTH2, taking only that authorization
// server's access tokens.
type signInRig struct {
	*connectRig
	google  *oauthtest.Server
	account *smtptest.Server
	sealKey string      // the service's OUTBOUND_SECRET_KEY, to read what it sealed
	refuse  atomic.Bool // the account refuses every token, as an organisation with SMTP AUTH off does
}

const workspaceAddress = "acme@acme.example"

// newSignInRig configures the app of platform, "google" unless named.
func newSignInRig(t *testing.T, platform ...string) *signInRig {
	t.Helper()
	on := "google"
	if len(platform) > 0 {
		on = platform[0]
	}
	rig := &signInRig{google: oauthtest.Start(t, oauthtest.Options{ClientID: "google-app", ClientSecret: "google-app-secret"}),
		sealKey: seal.NewKey()}
	ca := smtptest.NewCA(t)
	leaf := ca.Leaf(t, smtptest.LeafOptions{Hosts: []string{"smtp.gmail.com", "smtp.office365.com"}})
	account := smtptest.Options{Addr: "127.0.0.2:465", TLS: &leaf, Mechanisms: []string{"XOAUTH2"},
		Bearer: func(user, token string) bool { return !rig.refuse.Load() && rig.google.Valid(token) }}
	if on == "microsoft" {
		account.Addr, account.Mode = "127.0.0.3:587", smtptest.STARTTLS
	}
	rig.account = smtptest.Start(t, account)
	rig.connectRig = newConnectRig(t, func(o *options) {
		roots := x509.NewCertPool()
		if o.roots != nil {
			roots = o.roots.Clone()
		}
		roots.AppendCertsFromPEM(rig.google.CA.PEM())
		roots.AppendCertsFromPEM(ca.PEM())
		o.roots, o.sealKey, o.workers = roots, rig.sealKey, 2
		o.resolver = fixedResolver{"smtp.gmail.com": netip.MustParseAddr("127.0.0.2"),
			"smtp.office365.com": netip.MustParseAddr("127.0.0.3")}
		o.configure = func(c *config.Config) {
			a := config.OAuthApp{ClientID: "google-app", ClientSecret: secret.New("google-app-secret")}
			if on == "microsoft" {
				a.Directory = "common"
				c.MicrosoftApp = a
			} else {
				c.GoogleApp = a
			}
		}
		o.appOpts = append(o.appOpts, app.WithSignInEndpoints(on, app.SignInEndpoints{AuthURL: rig.google.AuthURL(),
			TokenURL: rig.google.URL(), JWKSURL: rig.google.JWKSURL(), Issuer: rig.google.Issuer()}))
	})
	return rig
}

// One click in a browser: Google Workspace chosen, "Sign in with Google",
// the authorization server consents, the browser is back on the product's
// page, the profile is xoauth2 with the refresh token, and mail goes out
// over XOAUTH2 with an access token the stored grant gets.
func TestConnectSignInWithGoogleInBrowser(t *testing.T) {
	rig := newSignInRig(t)
	link := rig.link(t, "en")
	// The test authorization server's certificate is from a test CA the
	// browser does not know.
	ctx := browser(t, chromedp.Flag("ignore-certificate-errors", true))

	do(t, ctx, chromedp.Navigate(link))
	fill(t, ctx, "email", workspaceAddress)
	do(t, ctx, chromedp.Click(chromedp.ID("provider-google")))
	if st := press(t, ctx, "next"); st != 200 {
		t.Fatalf("next: %d", st)
	}
	if b := eval[string](t, ctx, `document.getElementById('signin').textContent`); b != "Sign in with Google" {
		t.Fatalf("sign-in button %q", b)
	}
	screenshot(t, ctx, "connect-oauth-en.png")
	if st := press(t, ctx, "signin"); st != 200 {
		t.Fatalf("sign-in: %d", st)
	}
	loc := eval[string](t, ctx, `location.href`)
	if !strings.HasPrefix(loc, rig.product.URL+"/settings/email?") {
		t.Fatalf("landed on %s: %s", loc, eval[string](t, ctx, `document.body.innerText`))
	}
	rig.mu.Lock()
	got := rig.landed[len(rig.landed)-1]
	rig.mu.Unlock()
	if got.Get("status") != "connected" || got.Get("tenant") != "acme" {
		t.Errorf("return query %v", got)
	}

	asked := rig.google.Authorizations()
	if len(asked) != 1 {
		t.Fatalf("%d authorization requests", len(asked))
	}
	q := asked[0]
	for k, want := range map[string]string{"scope": "https://mail.google.com/ openid email", "access_type": "offline",
		"prompt": "consent", "login_hint": workspaceAddress, "code_challenge_method": "S256",
		"redirect_uri": rig.url + "/connect/oauth/callback", "response_type": "code", "client_id": "google-app"} {
		if q.Get(k) != want {
			t.Errorf("authorization %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if q.Get("state") == "" || strings.Contains(link, q.Get("state")) {
		t.Errorf("state %q", q.Get("state"))
	}

	r := rig.do("GET", "/v1/tenants/acme/smtp", rig.adminToken, nil)
	p := r.json(t)
	o, _ := p["oauth"].(map[string]any)
	if r.status != 200 || p["auth"] != "xoauth2" || p["provider"] != "google" || p["email"] != workspaceAddress || o == nil ||
		o["flow"] != "refresh_token" || o["client_id"] != "google-app" || o["token_url"] != rig.google.URL() {
		t.Fatalf("profile: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "rt-") || strings.Contains(string(r.body), "google-app-secret") {
		t.Errorf("profile shows a secret: %s", r.body)
	}
	// The refresh token is sealed in Redis; opened with the service's key
	// it is the one the authorization server issued.
	sealed, err := rig.rdb.HGet(t.Context(), tenant.Key("acme"), "oauth_refresh_token").Result()
	if err != nil || strings.Contains(sealed, "rt-") {
		t.Fatalf("stored refresh token %q: %v", sealed, err)
	}
	key, _ := seal.ParseKey(rig.sealKey)
	sealer, _ := seal.New(key)
	refresh, err := sealer.Open(sealed, []byte("outbound/tenant/acme/smtp/oauth_refresh_token"))
	if err != nil || !strings.HasPrefix(string(refresh), "rt-") {
		t.Fatalf("open the refresh token: %q %v", refresh, err)
	}

	// The sign-in logged in to the account before saving (the test's
	// stand-in for smtp.gmail.com:465), and the saved profile sends as it
	// is, over XOAUTH2 with a token the stored grant gets.
	if n := rig.account.Auths(); n != 1 {
		t.Errorf("%d logins before saving, want the sign-in's test", n)
	}
	in := oneRecipient("acme")
	delete(in, "from")
	r = rig.do("POST", "/v1/messages", rig.sendToken, in)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	sendSetup{harness: rig.harness}.waitStatus(t, r.json(t)["id"].(string), "sent")
	if m := rig.account.Messages(); len(m) != 1 || m[0].Username != workspaceAddress {
		t.Errorf("messages at the XOAUTH2 server: %+v", m)
	}
}

// signInClient is a browser without JavaScript: cookies, and redirects
// followed except to the product's page, where it stops to look.
func (r *signInRig) client(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(r.google.CA.PEM())
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), r.product.URL) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return c
}

// startSignIn opens the link, chooses Google Workspace for email and
// presses the sign-in button, stopping before the authorization server:
// it returns the authorization URL.
func (r *signInRig) startSignIn(t *testing.T, c *http.Client, link, email string, providerName ...string) string {
	t.Helper()
	res, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfField.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("no CSRF field in %s", body)
	}
	csrf := m[1]
	stop := c.CheckRedirect
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	defer func() { c.CheckRedirect = stop }()
	chosen := "google"
	if len(providerName) > 0 {
		chosen = providerName[0]
	}
	res, err = c.PostForm(link, url.Values{"csrf": {csrf}, "provider": {chosen}, "email": {email}, "action": {"signin"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), r.google.AuthURL()+"?") {
		t.Fatalf("sign-in: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	return res.Header.Get("Location")
}

// finish follows a URL to its end and returns the last answer's status,
// body and Location.
func finish(t *testing.T, c *http.Client, u string) (int, string, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header.Get("Location")
}

// Each refusal has its page, says what happened, and gives a way back;
// none stores a profile.
func TestConnectSignInRefusals(t *testing.T) {
	rig := newSignInRig(t)
	noProfile := func(t *testing.T) {
		t.Helper()
		if r := rig.do("GET", "/v1/tenants/acme/smtp", rig.adminToken, nil); r.status != http.StatusNotFound {
			t.Errorf("a profile was stored: %d %s", r.status, r.body)
		}
	}
	wayBack := func(t *testing.T, body, link string) {
		t.Helper()
		path := strings.TrimPrefix(link, rig.url)
		if !strings.Contains(body, `id="retry" href="`+path+`"`) || !strings.Contains(body, `id="back" href="`+rig.product.URL) {
			t.Errorf("no way back in %s", body)
		}
	}

	t.Run("provider without an app", func(t *testing.T) {
		c := newPageClient(t)
		link := rig.link(t, "en")
		c.get(link)
		res, body := c.post(link, "action", "next", "provider", "microsoft365", "email", "ops@contoso.example")
		if res.StatusCode != 200 || strings.Contains(body, `id="signin"`) || !strings.Contains(body, `id="password"`) {
			t.Errorf("Microsoft 365 without an app: %d %s", res.StatusCode, body)
		}
		res, body = c.post(link, "action", "next", "provider", "gmail", "email", "acme@gmail.com")
		if res.StatusCode != 200 || !strings.Contains(body, `id="signin"`) || !strings.Contains(body, `id="password"`) {
			t.Errorf("Gmail with Google's app: %d %s", res.StatusCode, body)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+rig.product.URL+" "+originOf(rig.google.AuthURL())+";") {
			t.Errorf("CSP %q", csp)
		}
	})
	t.Run("denied", func(t *testing.T) {
		link := rig.link(t, "en")
		c := rig.client(t)
		auth := rig.startSignIn(t, c, link, workspaceAddress)
		rig.google.DenyConsent(true)
		defer rig.google.DenyConsent(false)
		st, body, _ := finish(t, c, auth)
		if st != http.StatusForbidden || !strings.Contains(body, "You did not allow access") {
			t.Fatalf("%d %s", st, body)
		}
		wayBack(t, body, link)
		noProfile(t)
	})
	t.Run("other account", func(t *testing.T) {
		link := rig.link(t, "en")
		c := rig.client(t)
		auth := rig.startSignIn(t, c, link, workspaceAddress)
		rig.google.SignInAs("someone@else.example")
		defer rig.google.SignInAs("")
		st, body, _ := finish(t, c, auth)
		if st != http.StatusForbidden || !strings.Contains(body, "You signed in with another account") ||
			!strings.Contains(body, "someone@else.example") {
			t.Fatalf("%d %s", st, body)
		}
		wayBack(t, body, link)
		noProfile(t)
	})
	t.Run("bad state", func(t *testing.T) {
		link := rig.link(t, "en")
		c := rig.client(t)
		auth := rig.startSignIn(t, c, link, workspaceAddress)
		u, _ := url.Parse(auth)
		q := u.Query()
		q.Set("state", "forged-"+q.Get("state"))
		u.RawQuery = q.Encode()
		st, body, _ := finish(t, c, u.String())
		if st != http.StatusBadRequest || !strings.Contains(body, "This sign-in could not be finished") {
			t.Fatalf("%d %s", st, body)
		}
		wayBack(t, body, link)
		noProfile(t)
		// A callback without the sign-in's cookie (another browser's
		// code, say) is refused too.
		st, body, _ = finish(t, &http.Client{}, rig.url+"/connect/oauth/callback?state=x&code=y")
		if st != http.StatusBadRequest || !strings.Contains(body, "This sign-in could not be finished") {
			t.Fatalf("no cookie: %d %s", st, body)
		}
	})
	// The grant is good but the account will not take it over SMTP (an
	// organisation with SMTP AUTH off): the form says what the server
	// answered and offers the sign-in again; nothing is stored.
	t.Run("account refuses SMTP", func(t *testing.T) {
		link := rig.link(t, "en")
		c := rig.client(t)
		auth := rig.startSignIn(t, c, link, workspaceAddress)
		rig.refuse.Store(true)
		defer rig.refuse.Store(false)
		logins := rig.account.AuthAttempts()
		st, body, _ := finish(t, c, auth)
		if st != http.StatusOK || !strings.Contains(body, `id="test-result" role="alert"`) ||
			!strings.Contains(body, "did not accept this app&#39;s access") || !strings.Contains(body, "Username and Password not accepted") ||
			!strings.Contains(body, `id="signin"`) {
			t.Fatalf("%d %s", st, body)
		}
		if n := rig.account.AuthAttempts() - logins; n != 1 {
			t.Errorf("%d logins tried at the account, want 1", n)
		}
		if m := regexp.MustCompile(`rt-[0-9a-f]{24}`).FindString(body); m != "" {
			t.Errorf("the page shows the refresh token %s", m)
		}
		noProfile(t)
	})
	t.Run("forged ID token", func(t *testing.T) {
		link := rig.link(t, "en")
		c := rig.client(t)
		auth := rig.startSignIn(t, c, link, workspaceAddress)
		rig.google.ForgeIDTokens()
		st, body, _ := finish(t, c, auth)
		if st != http.StatusBadGateway || !strings.Contains(body, "The sign-in did not work") {
			t.Fatalf("%d %s", st, body)
		}
		noProfile(t)
	})
}

// A link that expires while its person is at the consent screen is
// refused at the callback, with the way back to the product.
func TestConnectSignInExpiredLink(t *testing.T) {
	rig := newSignInRig(t)
	link := rig.link(t, "en")
	c := rig.client(t)
	auth := rig.startSignIn(t, c, link, workspaceAddress)
	rig.expire(t, link)
	st, body, _ := finish(t, c, auth)
	if st != http.StatusGone || !strings.Contains(body, "This link has expired") || !strings.Contains(body, "status=expired") {
		t.Fatalf("%d %s", st, body)
	}
	if r := rig.do("GET", "/v1/tenants/acme/smtp", rig.adminToken, nil); r.status != http.StatusNotFound {
		t.Errorf("a profile was stored: %d", r.status)
	}
}

func originOf(raw string) string {
	u, _ := url.Parse(raw)
	return u.Scheme + "://" + u.Host
}

// Microsoft 365 signs in the same way, with its delegated SMTP.Send scope
// from the provider table and without Google's parameters; the sign-in
// that spends a link's last attempt still finishes.
func TestConnectSignInWithMicrosoft(t *testing.T) {
	rig := newSignInRig(t, "microsoft")
	link := rig.link(t, "en")
	token := link[strings.LastIndexByte(link, '/')+1:]
	sum := sha256.Sum256([]byte(token))
	if err := rig.rdb.HSet(t.Context(), "outbound:connect:{"+hex.EncodeToString(sum[:])+"}", "attempts", 19).Err(); err != nil {
		t.Fatal(err)
	}
	c := rig.client(t)
	auth := rig.startSignIn(t, c, link, "ops@contoso.example", "microsoft365")
	st, body, loc := finish(t, c, auth)
	if st != http.StatusSeeOther || !strings.HasPrefix(loc, rig.product.URL+"/settings/email?") || !strings.Contains(loc, "status=connected") {
		t.Fatalf("%d %s %s", st, loc, body)
	}
	q := rig.google.Authorizations()[0]
	if q.Get("scope") != "https://outlook.office.com/SMTP.Send offline_access openid email" || q.Get("prompt") != "" ||
		q.Get("access_type") != "" || q.Get("login_hint") != "ops@contoso.example" {
		t.Errorf("authorization %v", q)
	}
	r := rig.do("GET", "/v1/tenants/acme/smtp", rig.adminToken, nil)
	p := r.json(t)
	o, _ := p["oauth"].(map[string]any)
	if p["provider"] != "microsoft365" || p["auth"] != "xoauth2" || p["host"] != "smtp.office365.com" || o == nil ||
		o["flow"] != "refresh_token" || o["scope"] != "https://outlook.office.com/SMTP.Send offline_access" {
		t.Errorf("profile %s", r.body)
	}
}
