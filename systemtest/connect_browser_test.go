package systemtest

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is a headless Chromium tab, phone-sized, for the test's length.
// A machine without Chromium fails the test with how to install it: a
// browser test that skipped would pass without testing anything.
func browser(t *testing.T, more ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the connect page's browser tests need Chromium: apt-get update && apt-get install -y chromium (Debian's package)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(420, 900),
		// Without these Chromium keeps trying to reach Google's servers.
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true))
	opts = append(opts, more...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	return ctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// press clicks a button of the page's form and waits for the page it leads
// to; it returns that page's HTTP status.
func press(t *testing.T, ctx context.Context, id string) int64 {
	t.Helper()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("press %s: %v", id, err)
	}
	return res.Status
}

func value(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	return eval[string](t, ctx, `document.getElementById(`+strconv.Quote(id)+`).value`)
}

// fill replaces a field's value as a person typing would.
func fill(t *testing.T, ctx context.Context, id, text string) {
	t.Helper()
	eval[bool](t, ctx, `document.getElementById(`+strconv.Quote(id)+`).value = ''; true`)
	do(t, ctx, chromedp.SendKeys(chromedp.ID(id), text))
}

// screenshot takes the whole page (quality 100 is PNG) and, with OUTBOUND_UPDATE_SCREENSHOTS=1,
// writes it to docs/ for the README.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width < 300 || cfg.Height < 600 {
		t.Fatalf("screenshot %s: %v %+v", name, err, cfg)
	}
	if os.Getenv("OUTBOUND_UPDATE_SCREENSHOTS") == "1" {
		if err := os.WriteFile("../docs/"+name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The whole way through in a browser: the product's link, the provider
// suggested by the address, Gmail's steps, a successful test, Save, and
// back on the product's page with the profile stored.
func TestConnectInBrowser(t *testing.T) {
	rig := newConnectRig(t)
	link := rig.link(t, "en")
	ctx := browser(t)

	do(t, ctx, chromedp.Navigate(link))
	if lang := eval[string](t, ctx, `document.documentElement.lang + " " + getComputedStyle(document.body).direction`); lang != "en ltr" {
		t.Errorf("language and direction: %q", lang)
	}
	// Every field has a label.
	if n := eval[int](t, ctx, `[...document.querySelectorAll('input:not([type=hidden])')].filter(i => !document.querySelector('label[for="'+i.id+'"]')).length`); n != 0 {
		t.Errorf("%d fields without a label", n)
	}
	fill(t, ctx, "email", "acme@gmail.com")
	if st := press(t, ctx, "next"); st != 200 {
		t.Fatalf("next: %d", st)
	}
	if h := eval[string](t, ctx, `document.querySelector('h2').textContent`); h != "Your Gmail account" {
		t.Fatalf("heading %q", h)
	}
	if steps := eval[int](t, ctx, `document.querySelectorAll('.steps li').length`); steps != 4 {
		t.Errorf("%d steps", steps)
	}
	if v := value(t, ctx, "host") + ":" + value(t, ctx, "port") + " " + value(t, ctx, "username"); v != "smtp.gmail.com:465 acme@gmail.com" {
		t.Errorf("prefilled %q", v)
	}
	fill(t, ctx, "sender_name", "Acme Trading")
	fill(t, ctx, "port", strconv.Itoa(rig.gmail.Port())) // the test's server is not on 465
	fill(t, ctx, "password", "abcd efgh ijkl mnop")
	press(t, ctx, "test")
	result := eval[string](t, ctx, `document.getElementById('test-result').textContent + "|" + document.getElementById('test-result').getAttribute('role')`)
	if !strings.Contains(result, "The connection works") || !strings.HasSuffix(result, "|status") {
		t.Fatalf("test result %q", result)
	}
	if value(t, ctx, "password") != "" || value(t, ctx, "sender_name") != "Acme Trading" {
		t.Error("after a test the password must be empty and the rest kept")
	}
	screenshot(t, ctx, "connect-en.png")

	fill(t, ctx, "password", "abcd efgh ijkl mnop")
	press(t, ctx, "save")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || loc != rig.product.URL+"/settings/email?status=connected&tenant=acme" {
		t.Fatalf("after save: %q %v", loc, err)
	}
	if q := rig.lastLanding(t); q.Get("status") != "connected" || q.Get("tenant") != "acme" {
		t.Errorf("product page opened with %v", q)
	}

	p := rig.do("GET", "/v1/tenants/acme/smtp", rig.acmeAdmin, nil).json(t)
	for k, want := range map[string]any{"provider": "gmail", "sender_name": "Acme Trading", "email": "acme@gmail.com",
		"username": "acme@gmail.com", "host": "smtp.gmail.com", "port": float64(rig.gmail.Port()), "enabled": true, "password_set": true} {
		if p[k] != want {
			t.Errorf("profile %s = %v, want %v", k, p[k], want)
		}
	}
	// The App Password was stored without its spaces: the stored profile logs in.
	if r := rig.do("POST", "/v1/tenants/acme/smtp/verify", rig.adminToken, nil); r.json(t)["ok"] != true {
		t.Errorf("verify the saved profile: %s", r.body)
	}

	// Back on the link: it has done its work.
	do(t, ctx, chromedp.Navigate(link))
	if h := eval[string](t, ctx, `document.querySelector('h1').textContent`); h != "Your mailbox is connected" {
		t.Errorf("reopened link: %q", h)
	}
}

// A refused login: the advice is tied to the Password field, which is
// empty, and the rest is as typed.
func TestConnectWrongPasswordInBrowser(t *testing.T) {
	rig := newConnectRig(t)
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(rig.link(t, "")), chromedp.Click(chromedp.ID("provider-gmail")))
	press(t, ctx, "next")
	fill(t, ctx, "sender_name", "Acme Trading")
	fill(t, ctx, "email", "acme@gmail.com")
	fill(t, ctx, "port", strconv.Itoa(rig.gmail.Port()))
	fill(t, ctx, "password", "my usual password")
	press(t, ctx, "test")

	if role := eval[string](t, ctx, `document.getElementById('test-result').getAttribute('role')`); role != "alert" {
		t.Fatalf("failed test's role %q", role)
	}
	described := eval[string](t, ctx, `document.getElementById('password').getAttribute('aria-describedby')`)
	if !strings.Contains(described, "test-advice") || !strings.Contains(described, "test-hint") ||
		eval[string](t, ctx, `document.getElementById('password').getAttribute('aria-invalid')`) != "true" {
		t.Errorf("password field: aria-describedby %q", described)
	}
	hint := eval[string](t, ctx, `document.getElementById('test-hint').textContent`)
	if !strings.Contains(hint, "App Password") || !strings.Contains(hint, "2-Step Verification") {
		t.Errorf("hint %q", hint)
	}
	kept := value(t, ctx, "sender_name") + "|" + value(t, ctx, "email") + "|" + value(t, ctx, "host") + "|" + value(t, ctx, "port") + "|" + value(t, ctx, "password")
	if kept != "Acme Trading|acme@gmail.com|smtp.gmail.com|"+strconv.Itoa(rig.gmail.Port())+"|" {
		t.Errorf("fields after a failed test: %q", kept)
	}
	if html := eval[string](t, ctx, `document.documentElement.outerHTML`); strings.Contains(html, "my usual password") {
		t.Error("the page shows the password")
	}
	// A field left wrong is named in the summary and tied to its error.
	fill(t, ctx, "email", "not an address")
	press(t, ctx, "save")
	summary := eval[string](t, ctx, `document.getElementById('error-summary').getAttribute('role') + " " + document.querySelector('#error-summary a').getAttribute('href')`)
	if summary != "alert #email" || !strings.Contains(eval[string](t, ctx, `document.getElementById('email').getAttribute('aria-describedby')`), "email-error") {
		t.Errorf("error summary %q", summary)
	}
	if r := rig.do("GET", "/v1/tenants/acme/smtp", rig.adminToken, nil); r.status != 404 {
		t.Errorf("a failed save stored a profile: %d", r.status)
	}
}

// The Arabic page is laid out right to left, as the browser computes it.
func TestConnectArabicInBrowser(t *testing.T) {
	rig := newConnectRig(t)
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(rig.link(t, "ar")))
	if got := eval[string](t, ctx, `document.documentElement.lang + " " + getComputedStyle(document.body).direction`); got != "ar rtl" {
		t.Fatalf("language and direction: %q", got)
	}
	fill(t, ctx, "email", "acme@gmail.com")
	press(t, ctx, "next")
	if h := eval[string](t, ctx, `document.querySelector('h2').textContent`); h != "حسابك على Gmail" {
		t.Errorf("heading %q", h)
	}
	// Addresses and servers stay left to right inside the page.
	if d := eval[string](t, ctx, `getComputedStyle(document.getElementById('host')).direction + " " + getComputedStyle(document.querySelector('label[for=host]')).direction`); d != "ltr rtl" {
		t.Errorf("directions of the host field and its label: %q", d)
	}
	screenshot(t, ctx, "connect-ar.png")
}

// A form whose CSRF token is not the link's is refused with a page that
// leads back; an expired link says so and gives the way back to the product.
func TestConnectRefusalsInBrowser(t *testing.T) {
	rig := newConnectRig(t)
	ctx := browser(t)
	link := rig.link(t, "en")
	do(t, ctx, chromedp.Navigate(link))
	eval[bool](t, ctx, `document.querySelector('input[name=csrf]').value = 'forged'; true`)
	if st := press(t, ctx, "next"); st != 403 {
		t.Errorf("forged token: %d", st)
	}
	if h := eval[string](t, ctx, `document.querySelector('h1').textContent`); h != "This form could not be accepted" {
		t.Errorf("forged token page: %q", h)
	}
	press(t, ctx, "reload")
	do(t, ctx, chromedp.Click(chromedp.ID("provider-gmail")))
	if st := press(t, ctx, "next"); st != 200 {
		t.Errorf("after opening the page again: %d", st)
	}

	rig.expire(t, link)
	do(t, ctx, chromedp.Navigate(link))
	if h := eval[string](t, ctx, `document.querySelector('h1').textContent`); h != "This link has expired" {
		t.Errorf("expired link: %q", h)
	}
	press(t, ctx, "back")
	if q := rig.lastLanding(t); q.Get("status") != "expired" || q.Get("tenant") != "acme" {
		t.Errorf("way back from an expired link: %v", q)
	}
}
