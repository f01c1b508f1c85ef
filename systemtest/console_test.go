package systemtest

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// consoleSetup is a harness whose tenant acme has an account that refuses
// its login, and one message deferred by that refusal: acme's account is
// failing, with the server's reply in the message's attempt.
func consoleSetup(t *testing.T) (sendSetup, string) {
	t.Helper()
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, map[string]any{"password": "wrong"})
	id := s.accept(t, invoice())
	s.waitStatus(t, id, "deferred")
	return s, id
}

// The operator's way through in a browser: sign in with the admin token,
// find the failing tenant on the overview, read the refused login on the
// message's page, pause the tenant (the API then refuses its mail),
// cancel a scheduled message, and sign out.
func TestConsoleInBrowser(t *testing.T) {
	s, deferredID := consoleSetup(t)
	ctx := browser(t)

	do(t, ctx, chromedp.Navigate(s.url+"/console/"))
	if h := eval[string](t, ctx, `location.pathname + " " + document.querySelector('h1').textContent`); h != "/console/signin Sign in" {
		t.Fatalf("before signing in: %q", h)
	}
	if n := eval[int](t, ctx, `[...document.querySelectorAll('input:not([type=hidden])')].filter(i => !document.querySelector('label[for="'+i.id+'"]')).length`); n != 0 {
		t.Errorf("%d fields without a label", n)
	}
	fill(t, ctx, "token", "obk_not-a-key")
	if st := press(t, ctx, "signin"); st != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d", st)
	}
	if role := eval[string](t, ctx, `document.getElementById('error-summary').getAttribute('role')`); role != "alert" {
		t.Errorf("error summary's role %q", role)
	}
	fill(t, ctx, "token", s.adminToken)
	if st := press(t, ctx, "signin"); st != http.StatusOK {
		t.Fatalf("sign in: %d", st)
	}
	if html := eval[string](t, ctx, `document.documentElement.outerHTML`); strings.Contains(html, s.adminToken) {
		t.Error("the console shows the token")
	}

	// The overview names the failing account and draws the hour.
	failing := eval[string](t, ctx, `document.getElementById('failing').textContent`)
	if !strings.Contains(failing, "acme") || !strings.Contains(failing, "auth_failed") {
		t.Fatalf("failing tenants: %q", failing)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#chart rect.deferred').length`); n < 1 {
		t.Errorf("the chart draws %d deferred bars", n)
	}
	if d := eval[string](t, ctx, `document.getElementById('total-deferred').textContent`); d == "0" {
		t.Errorf("deferred in the last hour: %s", d)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#depths tbody tr').length`); n < 1 {
		t.Errorf("%d partitions' depths", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('table th:not([scope])').length`); n != 0 {
		t.Errorf("%d table headers without a scope", n)
	}
	screenshot(t, ctx, "console-en.png")
	do(t, ctx, chromedp.Navigate(s.url+"/console/?lang=ar"))
	if got := eval[string](t, ctx, `document.documentElement.lang + " " + getComputedStyle(document.body).direction`); got != "ar rtl" {
		t.Errorf("Arabic overview: %q", got)
	}
	screenshot(t, ctx, "console-ar.png")
	do(t, ctx, chromedp.Navigate(s.url+"/console/?lang=en"))

	// The tenant's page, then the message's: the server's reply to the login.
	follow(t, ctx, `#failing a[href="/console/tenants/acme"]`)
	if le := eval[string](t, ctx, `document.getElementById('last-error').textContent`); !strings.Contains(le, "535") {
		t.Errorf("last error %q", le)
	}
	if html := eval[string](t, ctx, `document.documentElement.outerHTML`); strings.Contains(html, "wrong") {
		t.Error("the tenant page shows the password")
	}
	// Test the connection: the refusal, in the error summary.
	if st := press(t, ctx, "verify"); st != http.StatusOK {
		t.Fatalf("verify: %d", st)
	}
	if e := eval[string](t, ctx, `document.getElementById('error-summary').getAttribute('role') + " " + document.getElementById('error-summary').textContent`); !strings.HasPrefix(e, "alert") ||
		!strings.Contains(e, "auth_failed 535: Username and Password not accepted") {
		t.Errorf("verify's result %q", e)
	}
	follow(t, ctx, `#messages a[href="/console/messages/`+deferredID+`"]`)
	if reply := eval[string](t, ctx, `document.querySelector('#attempts td.reply').textContent`); reply != "Username and Password not accepted" {
		t.Errorf("the attempt's reply %q", reply)
	}

	// Pause: the API refuses acme's next message.
	do(t, ctx, chromedp.Navigate(s.url+"/console/tenants/acme"))
	fill(t, ctx, "reason", "login refused")
	if st := press(t, ctx, "pause"); st != http.StatusOK {
		t.Fatalf("pause: %d", st)
	}
	if st := eval[string](t, ctx, `document.getElementById('sending').textContent`); st != "Paused (login refused)" {
		t.Errorf("after pausing: %q", st)
	}
	if r := s.post(t, invoice()); r.status != http.StatusLocked {
		t.Errorf("a message for a paused tenant: %d %s", r.status, r.body)
	}
	press(t, ctx, "resume")

	// A scheduled message is cancelled from its page.
	in := invoice()
	in["send_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	scheduled := s.accept(t, in)
	do(t, ctx, chromedp.Navigate(s.url+"/console/messages/"+scheduled))
	if st := press(t, ctx, "cancel"); st != http.StatusOK {
		t.Fatalf("cancel: %d", st)
	}
	if st := eval[string](t, ctx, `document.getElementById('status').textContent + "|" + document.getElementById('notice').getAttribute('role')`); st != "cancelled|status" {
		t.Errorf("after cancelling: %q", st)
	}
	if got := s.do("GET", "/v1/messages/"+scheduled, s.sendToken, nil).json(t)["status"]; got != "cancelled" {
		t.Errorf("the API says %v", got)
	}

	// Sign out: the session's cookie opens nothing any more.
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.url + "/console/"}})
	if err != nil {
		t.Fatal(err)
	}
	var old string
	for _, c := range cookies.Cookies {
		if c.Name == "outbound_console" {
			old = c.Value
		}
	}
	if old == "" {
		t.Fatal("no session cookie")
	}
	press(t, ctx, "signout")
	if h := eval[string](t, ctx, `location.pathname`); h != "/console/signin" {
		t.Errorf("after signing out: %q", h)
	}
	if res := consoleGet(t, s.url+"/console/", &http.Cookie{Name: "outbound_console", Value: old}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the old cookie after signing out: %d", res.StatusCode)
	}
	for _, secret := range []string{old, s.adminToken} {
		if strings.Contains(s.logs.String(), secret) {
			t.Error("the log holds the session id or the token")
		}
	}
}

// follow clicks the link sel selects and waits for its page.
func follow(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(sel))
	if err != nil || res.Status != http.StatusOK {
		t.Fatalf("follow %s: %v %v", sel, res, err)
	}
}

// consoleGet fetches a console page with cookie, not following redirects.
func consoleGet(t *testing.T, u string, cookie *http.Cookie) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// consoleClient is a browser without JavaScript: a cookie jar and forms.
type consoleClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newConsoleClient(t *testing.T, base string) *consoleClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: noRedirect.CheckRedirect}}
}

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get answers the page's status and body, and the csrf field its form carries.
func (c *consoleClient) get(path string) (int, string, string) {
	c.t.Helper()
	res, err := c.c.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	csrf := ""
	if m := consoleCSRF.FindStringSubmatch(string(b)); m != nil {
		csrf = m[1]
	}
	return res.StatusCode, string(b), csrf
}

func (c *consoleClient) post(path string, form url.Values) *http.Response {
	c.t.Helper()
	res, err := c.c.PostForm(c.base+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// signIn signs in with token and answers the sign-in's response.
func (c *consoleClient) signIn(token string) *http.Response {
	c.t.Helper()
	_, _, csrf := c.get("/console/signin")
	return c.post("/console/signin", url.Values{"csrf": {csrf}, "token": {token}})
}

func TestConsoleSignInAndCSRF(t *testing.T) {
	h := newHarness(t, options{})
	c := newConsoleClient(t, h.url)

	// Sign-in refuses a form without the token of its page, and a token
	// that is not an admin key.
	c.get("/console/signin")
	if res := c.post("/console/signin", url.Values{"token": {h.adminToken}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without the form's CSRF token: %d", res.StatusCode)
	}
	for _, token := range []string{"obk_wrong", h.sendToken, ""} {
		if res := c.signIn(token); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("sign in with a non-admin token: %d", res.StatusCode)
		}
	}
	res := c.signIn(h.adminToken)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/" {
		t.Fatalf("sign in: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "outbound_console" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/console" ||
		session.Secure || session.MaxAge != 12*3600 || len(session.Value) < 40 {
		t.Fatalf("session cookie %+v", session)
	}
	// Redis holds neither the token nor the session id.
	keys, err := h.rdb.Keys(context.Background(), "outbound:console:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("session keys %v %v", keys, err)
	}
	v, _ := h.rdb.Get(context.Background(), keys[0]).Result()
	if strings.Contains(keys[0]+v, session.Value) || strings.Contains(v, h.adminToken) {
		t.Errorf("Redis holds the session id or the token: %s %s", keys[0], v)
	}
	if ttl := h.rdb.TTL(context.Background(), keys[0]).Val(); ttl < 11*time.Hour || ttl > 12*time.Hour {
		t.Errorf("session TTL %v", ttl)
	}

	// A POST without the session's CSRF token is refused and does nothing.
	st, _, csrf := c.get("/console/tenants/acme")
	if st != http.StatusOK || csrf == "" {
		t.Fatalf("tenant page: %d csrf %q", st, csrf)
	}
	for _, form := range []url.Values{{"action": {"pause"}}, {"action": {"pause"}, "csrf": {"forged"}}} {
		if res := c.post("/console/tenants/acme/status", form); res.StatusCode != http.StatusForbidden {
			t.Errorf("pause without the CSRF token: %d", res.StatusCode)
		}
	}
	if got := h.do("GET", "/v1/tenants/acme/status", h.adminToken, nil).json(t)["sending"]; got != "active" {
		t.Errorf("after refused POSTs acme is %v", got)
	}
	if res := c.post("/console/tenants/acme/status", url.Values{"action": {"pause"}, "csrf": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("pause with the token: %d", res.StatusCode)
	}
	if got := h.do("GET", "/v1/tenants/acme/status", h.adminToken, nil).json(t)["sending"]; got != "paused" {
		t.Errorf("after pausing acme is %v", got)
	}

	// Every answer carries the page's protections.
	res, _ = c.c.Get(h.url + "/console/")
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("overview: %d %v", res.StatusCode, res.Header)
	}

	// Sign out ends the session: the cookie no longer opens a page.
	if res := c.post("/console/signout", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("sign out: %d", res.StatusCode)
	}
	if res := consoleGet(t, h.url+"/console/", session); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/signin" {
		t.Errorf("the old cookie: %d", res.StatusCode)
	}
	if n := len(h.rdb.Keys(context.Background(), "outbound:console:*").Val()); n != 0 {
		t.Errorf("%d sessions left after signing out", n)
	}
	if strings.Contains(h.logs.String(), session.Value) || strings.Contains(h.logs.String(), h.adminToken) {
		t.Error("the log holds the session id or the token")
	}
}

// admin@acme's console is acme's: its tenant only, no queue-wide figures,
// and no pausing (the operator's, as in the API).
func TestConsoleTenantBoundKey(t *testing.T) {
	h := newHarness(t, options{})
	for _, id := range []string{"acme", "globex"} {
		if r := h.do("PUT", "/v1/tenants/"+id+"/status", h.adminToken, map[string]any{"sending": "active"}); r.status != 200 {
			t.Fatalf("status %s: %d", id, r.status)
		}
	}
	if r := h.do("PUT", "/v1/tenants/acme/suppressions/gone@example.com", h.adminToken, map[string]any{"reason": "asked to stop"}); r.status != 201 && r.status != 200 {
		t.Fatalf("suppress: %d %s", r.status, r.body)
	}
	c := newConsoleClient(t, h.url)
	if res := c.signIn(h.acmeAdmin); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", res.StatusCode)
	}
	if _, body, _ := c.get("/console/tenants/acme"); !strings.Contains(body, `<th scope="row" dir="ltr">gone@example.com</th>`) ||
		!strings.Contains(body, "asked to stop") {
		t.Errorf("acme's suppressions are not on its page:\n%s", body)
	}
	st, body, csrf := c.get("/console/tenants")
	if st != 200 || !strings.Contains(body, `href="/console/tenants/acme"`) || strings.Contains(body, "globex") {
		t.Errorf("tenants page of admin@acme: %d\n%s", st, body)
	}
	if st, _, _ := c.get("/console/tenants/globex"); st != http.StatusNotFound {
		t.Errorf("another tenant's page: %d", st)
	}
	if st, body, _ := c.get("/console/"); st != 200 || strings.Contains(body, `id="depths"`) {
		t.Errorf("overview of admin@acme: %d, depths shown: %v", st, strings.Contains(body, `id="depths"`))
	}
	if res := c.post("/console/tenants/acme/status", url.Values{"action": {"pause"}, "csrf": {csrf}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("admin@acme pausing: %d", res.StatusCode)
	}
	c2 := newConsoleClient(t, h.url)
	c2.signIn(h.adminToken)
	if _, body, _ := c2.get("/console/tenants?q=glo"); !strings.Contains(body, `href="/console/tenants/globex"`) || strings.Contains(body, `href="/console/tenants/acme"`) {
		t.Errorf("operator's search for glo:\n%s", body)
	}
}

// A logged webhook event is sent again from the webhook's page, with the
// session's CSRF token; the page is the operator's only.
func TestConsoleWebhookRetry(t *testing.T) {
	s, rcv, id := sentWithWebhook(t)

	c := newConsoleClient(t, s.url)
	c.signIn(s.adminToken)
	if st, body, _ := c.get("/console/webhooks"); st != 200 || !strings.Contains(body, `href="/console/webhooks/ops"`) {
		t.Fatalf("webhooks page: %d\n%s", st, body)
	}
	st, body, csrf := c.get("/console/webhooks/ops")
	form := regexp.MustCompile(`action="(/console/webhooks/ops/deliveries/[^"]+/retry)"`).FindStringSubmatch(body)
	if st != 200 || form == nil || !strings.Contains(body, `href="/console/messages/`+id+`"`) {
		t.Fatalf("deliveries page: %d\n%s", st, body)
	}
	if res := c.post(form[1], url.Values{}); res.StatusCode != http.StatusForbidden {
		t.Errorf("retry without the CSRF token: %d", res.StatusCode)
	}
	if res := c.post(form[1], url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("retry: %d", res.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rcv.events(id)["message.sent"] < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := rcv.events(id)["message.sent"]; n != 2 {
		t.Fatalf("the receiver got the event %d times, want 2", n)
	}
	if res := c.post("/console/webhooks/ops/deliveries/evt_0_0-1/retry", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusNotFound {
		t.Errorf("retry of an event not logged: %d", res.StatusCode)
	}

	acme := newConsoleClient(t, s.url)
	acme.signIn(s.acmeAdmin)
	if st, _, _ := acme.get("/console/webhooks/ops"); st != http.StatusNotFound {
		t.Errorf("admin@acme on the webhooks: %d", st)
	}
}
