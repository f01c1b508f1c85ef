package systemtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// connectRig is a service with connect links allowed back to a small
// product page, and a Gmail-named SMTP server (on loopback, STARTTLS) that
// knows acme@gmail.com's App Password.
type connectRig struct {
	*harness
	gmail   *smtptest.Server
	product *httptest.Server
	mu      sync.Mutex
	landed  []url.Values // the queries the product page was opened with
}

const appPassword = "abcdefghijklmnop"

func newConnectRig(t *testing.T, more ...func(*options)) *connectRig {
	t.Helper()
	ca := smtptest.NewCA(t)
	rig := &connectRig{gmail: smtptest.Start(t, smtptest.Options{Mode: smtptest.STARTTLS,
		Users: map[string]string{"acme@gmail.com": appPassword},
		TLS:   ptr(ca.Leaf(t, smtptest.LeafOptions{Hosts: []string{"smtp.gmail.com"}}))})}
	rig.product = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/settings/") {
			http.NotFound(w, r) // the browser's favicon.ico
			return
		}
		rig.mu.Lock()
		rig.landed = append(rig.landed, r.URL.Query())
		rig.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Product settings</title><p id="status">%s</p>`, html.EscapeString(r.URL.RawQuery))
	}))
	t.Cleanup(rig.product.Close)
	o := options{roots: ca.Pool(), allowPrivate: true, resolver: loopbackResolver{"smtp.gmail.com": true},
		connectReturn: []string{rig.product.URL + "/settings/"}}
	for _, f := range more {
		f(&o)
	}
	rig.harness = newHarness(t, o)
	return rig
}

// link asks the API for a connect link for acme.
func (r *connectRig) link(t *testing.T, locale string) string {
	t.Helper()
	body := map[string]any{"return_url": r.product.URL + "/settings/email"}
	if locale != "" {
		body["locale"] = locale
	}
	res := r.do("POST", "/v1/tenants/acme/connect", r.acmeAdmin, body)
	if res.status != http.StatusCreated {
		t.Fatalf("create link: %d %s", res.status, res.body)
	}
	m := res.json(t)
	u, _ := m["url"].(string)
	if !strings.HasPrefix(u, r.url+"/connect/") {
		t.Fatalf("link %q is not under %s/connect/", u, r.url)
	}
	exp, err := time.Parse(time.RFC3339, m["expires_at"].(string))
	if err != nil || exp.Before(time.Now().Add(59*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
		t.Fatalf("expires_at %v: %v", m["expires_at"], err)
	}
	return u
}

// expire moves a link's expiry into the past, as an hour's wait would.
func (r *connectRig) expire(t *testing.T, link string) {
	t.Helper()
	token := link[strings.LastIndexByte(link, '/')+1:]
	sum := sha256.Sum256([]byte(token))
	key := "outbound:connect:{" + hex.EncodeToString(sum[:]) + "}"
	if n, err := r.rdb.HSet(t.Context(), key, "expires_at", strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)).Result(); err != nil || n != 0 {
		t.Fatalf("expire link: %d %v", n, err)
	}
}

func (r *connectRig) lastLanding(t *testing.T) url.Values {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.landed) == 0 {
		t.Fatal("the product page was never opened")
	}
	return r.landed[len(r.landed)-1]
}

func TestConnectLinkCreation(t *testing.T) {
	rig := newConnectRig(t)
	path := "/v1/tenants/acme/connect"
	good := map[string]any{"return_url": rig.product.URL + "/settings/email", "locale": "ar", "expires_in": 600}

	r := rig.do("POST", path, rig.adminToken, good)
	if r.status != http.StatusCreated {
		t.Fatalf("operator: %d %s", r.status, r.body)
	}
	if exp, _ := time.Parse(time.RFC3339, r.json(t)["expires_at"].(string)); exp.After(time.Now().Add(11 * time.Minute)) {
		t.Errorf("expires_in 600 gave %v", exp)
	}
	if r := rig.do("POST", "/v1/tenants/other/connect", rig.acmeAdmin, good); r.status != http.StatusForbidden || r.code(t) != "forbidden" {
		t.Errorf("admin@acme for another tenant: %d %s", r.status, r.body)
	}
	if r := rig.do("POST", path, rig.sendToken, good); r.status != http.StatusForbidden {
		t.Errorf("send scope: %d %s", r.status, r.body)
	}
	if r := rig.do("POST", path, "", good); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", r.status, r.body)
	}

	for _, bad := range []string{"https://evil.example/settings/", rig.product.URL + "/admin", rig.product.URL + "/settings/../admin"} {
		r := rig.do("POST", path, rig.adminToken, map[string]any{"return_url": bad})
		if r.status != http.StatusUnprocessableEntity || fieldCode(t, r, "return_url") != "return_url_not_allowed" {
			t.Errorf("return_url %q: %d %s", bad, r.status, r.body)
		}
	}
	r = rig.do("POST", path, rig.adminToken, map[string]any{"return_url": good["return_url"], "locale": "fr", "expires_in": 30})
	if r.status != http.StatusUnprocessableEntity || fieldCode(t, r, "locale") != "invalid_value" || fieldCode(t, r, "expires_in") != "out_of_range" {
		t.Errorf("bad locale and lifetime: %d %s", r.status, r.body)
	}
	if r := rig.do("POST", path, rig.adminToken, map[string]any{"return_url": good["return_url"], "expires_in": 1 << 62}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("a lifetime that would overflow: %d %s", r.status, r.body)
	}
	if r := rig.do("POST", path, rig.adminToken, map[string]any{"return_url": good["return_url"], "extra": 1}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("unknown field: %d %s", r.status, r.body)
	}
	if r := rig.do("POST", path, rig.adminToken, "{"); r.status != http.StatusBadRequest {
		t.Errorf("broken JSON: %d %s", r.status, r.body)
	}
	if r := rig.do("POST", "/v1/tenants/-bad/connect", rig.adminToken, good); r.status != http.StatusBadRequest {
		t.Errorf("bad tenant id: %d %s", r.status, r.body)
	}
}

// pageClient is a browser without JavaScript: it keeps cookies, posts the
// page's forms as a plain HTML form would and does not follow redirects.
type pageClient struct {
	t    *testing.T
	http *http.Client
	csrf string
}

func newPageClient(t *testing.T) *pageClient {
	jar, _ := cookiejar.New(nil)
	return &pageClient{t: t, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`<input type="hidden" name="csrf" value="([^"]+)">`)

func (c *pageClient) send(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if m := csrfField.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return res, string(b)
}

func (c *pageClient) get(link string, header ...string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", link, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return c.send(req)
}

// post submits the form with the page's CSRF token and fields as
// name, value pairs.
func (c *pageClient) post(link string, fields ...string) (*http.Response, string) {
	c.t.Helper()
	form := url.Values{"csrf": {c.csrf}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	req, _ := http.NewRequest("POST", link, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.send(req)
}

// The page works as plain HTML forms: no script is needed to choose,
// test, save or cancel, and every answer carries the page's protections.
func TestConnectPageWithoutJavaScript(t *testing.T) {
	rig := newConnectRig(t)
	link := rig.link(t, "")
	c := newPageClient(t)

	res, body := c.get(link)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `<html lang="en" dir="ltr">`) || c.csrf == "" {
		t.Fatalf("GET: %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, "<script") {
		t.Error("the page has a script")
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "frame-ancestors " + rig.product.URL, "form-action 'self' " + rig.product.URL} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "same-origin"} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	cookie := res.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/connect/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("cookie %q lacks %s", cookie, want)
		}
	}
	if res, _ := c.get(rig.url + "/connect/assets/connect.css"); res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}

	// Next with only an address: the provider is suggested by its domain.
	res, body = c.post(link, "action", "next", "email", "acme@gmail.com")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Your Gmail account") || !strings.Contains(body, `value="smtp.gmail.com"`) ||
		!strings.Contains(body, `value="465"`) || !strings.Contains(body, "16 letters") {
		t.Fatalf("next: %d %s", res.StatusCode, body)
	}
	fields := []string{"provider", "gmail", "sender_name", "Acme Trading", "email", "acme@gmail.com", "username", "acme@gmail.com",
		"host", "smtp.gmail.com", "port", strconv.Itoa(rig.gmail.Port()), "enabled", "on"}
	_, body = c.post(link, append([]string{"action", "test", "password", "abcd efgh ijkl mnop"}, fields...)...)
	if !strings.Contains(body, "The connection works") || strings.Contains(body, "abcd efgh") {
		t.Fatalf("test: %s", body)
	}

	// A form without the cookie, or with another token, is refused.
	bare := &pageClient{t: t, http: &http.Client{}, csrf: c.csrf}
	if res, body := bare.post(link, "action", "cancel"); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "could not be accepted") {
		t.Errorf("no cookie: %d %s", res.StatusCode, body)
	}
	good := c.csrf
	c.csrf = "forged"
	if res, body := c.post(link, "action", "cancel"); res.StatusCode != http.StatusForbidden || !strings.Contains(body, `href="/connect/`) {
		t.Errorf("another token: %d %s", res.StatusCode, body)
	}
	c.csrf = good

	res, _ = c.post(link, "action", "cancel")
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != rig.product.URL+"/settings/email?status=cancelled&tenant=acme" {
		t.Errorf("cancel: %d %q", res.StatusCode, loc)
	}
	res, _ = c.post(link, append([]string{"action", "save", "password", appPassword}, fields...)...)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != rig.product.URL+"/settings/email?status=connected&tenant=acme" {
		t.Fatalf("save: %d %q", res.StatusCode, loc)
	}
	p := rig.do("GET", "/v1/tenants/acme/smtp", rig.adminToken, nil).json(t)
	if p["provider"] != "gmail" || p["sender_name"] != "Acme Trading" || p["password_set"] != true || p["security"] != "starttls" {
		t.Errorf("saved profile: %v", p)
	}

	// A saved link works no more, and says so with the way back.
	res, body = c.get(link)
	if res.StatusCode != http.StatusGone || !strings.Contains(body, "Your mailbox is connected") || !strings.Contains(body, "status=connected") {
		t.Errorf("after save: %d %s", res.StatusCode, body)
	}
	// A new link starts from the stored account; a blank password keeps
	// the stored one, for the same server.
	again := rig.link(t, "")
	c2 := newPageClient(t)
	if _, body := c2.get(again); !strings.Contains(body, `value="acme@gmail.com"`) || !strings.Contains(body, `value="gmail" checked`) {
		t.Errorf("a second link does not start from the stored account: %s", body)
	}
	if _, body := c2.post(again, "action", "next", "provider", "gmail"); !strings.Contains(body, `value="Acme Trading"`) ||
		!strings.Contains(body, `value="`+strconv.Itoa(rig.gmail.Port())+`"`) {
		t.Errorf("the form does not hold the stored account: %s", body)
	}
	if _, body := c2.post(again, append([]string{"action", "test", "password", ""}, fields...)...); !strings.Contains(body, "The connection works") {
		t.Errorf("a blank password does not test with the stored one: %s", body)
	}
	if logs := rig.logs.String(); strings.Contains(logs, link[strings.LastIndexByte(link, '/')+1:]) || strings.Contains(logs, appPassword) {
		t.Error("the logs hold the link's token or the password")
	}
}

// A link allows MaxAttempts tests; the next finds a page saying so, with
// the way back. A browser asking for Arabic gets the right-to-left page.
func TestConnectPageAttemptsAndLanguage(t *testing.T) {
	rig := newConnectRig(t)
	link := rig.link(t, "")
	c := newPageClient(t)
	_, body := c.get(link, "Accept-Language", "ar-EG,ar;q=0.9,en;q=0.5")
	if !strings.Contains(body, `<html lang="ar" dir="rtl">`) || !strings.Contains(body, "اربط بريدك الإلكتروني") {
		t.Fatalf("Arabic page: %s", body)
	}
	fields := []string{"action", "test", "provider", "other", "email", "acme@gmail.com", "password", "wrong",
		"host", "smtp.gmail.com", "port", strconv.Itoa(rig.gmail.Port())}
	for i := range 20 {
		if res, body := c.post(link, fields...); res.StatusCode != http.StatusOK || !strings.Contains(body, `id="test-result" role="alert"`) {
			t.Fatalf("test %d: %d %s", i+1, res.StatusCode, body)
		}
	}
	res, body := c.post(link, fields...)
	if res.StatusCode != http.StatusGone || !strings.Contains(body, "status=expired") {
		t.Fatalf("test 21: %d %s", res.StatusCode, body)
	}
	if n := rig.gmail.AuthAttempts(); n != 20 {
		t.Errorf("%d logins reached the server, want 20", n)
	}

	// An expired link: the same page, in the link's own language.
	link = rig.link(t, "en")
	rig.expire(t, link)
	res, body = newPageClient(t).get(link, "Accept-Language", "ar")
	if res.StatusCode != http.StatusGone || !strings.Contains(body, "This link has expired") || !strings.Contains(body, "status=expired&amp;tenant=acme") {
		t.Errorf("expired: %d %s", res.StatusCode, body)
	}
	if res, body := newPageClient(t).get(rig.url + "/connect/not-a-link"); res.StatusCode != http.StatusNotFound || !strings.Contains(body, "not valid") {
		t.Errorf("unknown link: %d %s", res.StatusCode, body)
	}
}
