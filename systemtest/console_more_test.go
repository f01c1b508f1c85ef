package systemtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/suppression"
)

// A suppression is removed from the tenant's page with the session's CSRF
// token; an entry a hard bounce added stays unless the operator removes
// it, and admin@acme reads the refusal in the page.
func TestConsoleRemoveSuppression(t *testing.T) {
	h := newHarness(t, options{})
	if r := h.do("PUT", "/v1/tenants/acme/suppressions/gone@example.com", h.adminToken, map[string]any{"reason": "asked to stop"}); r.status != 201 && r.status != 200 {
		t.Fatalf("suppress: %d %s", r.status, r.body)
	}
	if _, err := suppression.New(h.rdb).Add(context.Background(), "acme",
		suppression.Entry{Email: "bounced@example.com", Source: suppression.SourceBounce, Reason: "550 no such user"}); err != nil {
		t.Fatal(err)
	}
	acme := newConsoleClient(t, h.url)
	acme.signIn(h.acmeAdmin)
	_, body, csrf := acme.get("/console/tenants/acme")
	if !strings.Contains(body, `action="/console/tenants/acme/suppressions/remove"`) {
		t.Fatalf("no remove form on the tenant's page:\n%s", body)
	}
	remove := func(c *consoleClient, email, csrf string) *http.Response {
		return c.post("/console/tenants/acme/suppressions/remove", url.Values{"csrf": {csrf}, "email": {email}})
	}
	if res := remove(acme, "gone@example.com", "forged"); res.StatusCode != http.StatusForbidden {
		t.Errorf("remove without the CSRF token: %d", res.StatusCode)
	}
	res, err := acme.c.PostForm(h.url+"/console/tenants/acme/suppressions/remove", url.Values{"csrf": {csrf}, "email": {"bounced@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	_, _ = readBody(&b, res)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(b.String(), "hard bounce") {
		t.Errorf("admin@acme removing a bounce: %d\n%s", res.StatusCode, b.String())
	}
	if r := h.do("GET", "/v1/tenants/acme/suppressions/bounced@example.com", h.adminToken, nil); r.status != 200 {
		t.Errorf("the bounce is gone after a refused remove: %d", r.status)
	}
	if res := remove(acme, "gone@example.com", csrf); res.StatusCode != http.StatusSeeOther {
		t.Errorf("remove: %d", res.StatusCode)
	}
	if r := h.do("GET", "/v1/tenants/acme/suppressions/gone@example.com", h.adminToken, nil); r.status != 404 {
		t.Errorf("after remove: %d", r.status)
	}
	op := newConsoleClient(t, h.url)
	op.signIn(h.adminToken)
	_, _, opCSRF := op.get("/console/tenants/acme")
	if res := remove(op, "bounced@example.com", opCSRF); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the operator removing a bounce: %d", res.StatusCode)
	}
	if r := h.do("GET", "/v1/tenants/acme/suppressions/bounced@example.com", h.adminToken, nil); r.status != 404 {
		t.Errorf("after the operator's remove: %d", r.status)
	}
}

// A message's page lists the webhook events logged about it.
func TestConsoleMessageEvents(t *testing.T) {
	s, _, id := sentWithWebhook(t)
	c := newConsoleClient(t, s.url)
	c.signIn(s.adminToken)
	_, body, _ := c.get("/console/messages/" + id)
	i := strings.Index(body, `id="events"`)
	if i < 0 || !strings.Contains(body[i:], "message.sent") {
		t.Errorf("the message's events are not on its page:\n%s", body)
	}
}

// sentWithWebhook is a send setup with webhook "ops" listening for
// message.sent at a receiver, and one message of beta's it has heard of.
func sentWithWebhook(t *testing.T) (sendSetup, *receiver, string) {
	t.Helper()
	rcv := newReceiver(t)
	s := newSendSetup(t, smtptest.Options{}, rcv.trust)
	res := s.do("PUT", "/v1/webhooks/ops", s.adminToken, map[string]any{"url": rcv.srv.URL + "/hook", "events": []string{"message.sent"}})
	if res.status != http.StatusCreated {
		t.Fatalf("PUT webhook: %d %s", res.status, res.body)
	}
	rcv.secret = res.json(t)["secret"].(string)
	id := s.accept(t, oneRecipient("beta"))
	rcv.waitEvent(t, id, "message.sent")
	return s, rcv, id
}

func readBody(b *strings.Builder, res *http.Response) (int64, error) {
	defer res.Body.Close()
	return io.Copy(b, res.Body)
}

// A tenant's page shows how much of its per-minute and per-day windows
// it has used, as the accept answer's RateLimit-* headers count them, and
// reading it spends nothing.
func TestConsoleTenantRateUsage(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, func(o *options) { o.rateLimit = ratelimit.Limit{PerMinute: 6, PerDay: 100} })
	// Small limits refill slowly (one every 10 s), so the page reads what
	// the posts spent.
	for range 3 {
		if r := s.post(t, oneRecipient("beta")); r.status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
	}
	c := newConsoleClient(t, s.url)
	c.signIn(s.adminToken)
	used := regexp.MustCompile(`id="rate-(minute|day)"[^\n]*?<td class="used" dir="ltr">(\d+) / (\d+)</td>`)
	for range 2 {
		_, body, _ := c.get("/console/tenants/beta")
		got := map[string]string{}
		for _, m := range used.FindAllStringSubmatch(body, -1) {
			got[m[1]] = m[2] + " / " + m[3]
		}
		if got["minute"] != "3 / 6" || got["day"] != "3 / 100" {
			t.Fatalf("rate usage on beta's page: %v\n%s", got, body)
		}
	}
	r := s.post(t, oneRecipient("beta"))
	if r.header.Get("RateLimit-Remaining") != "2" {
		t.Errorf("after the page was read twice the next message leaves %q, want 2", r.header.Get("RateLimit-Remaining"))
	}
}

// The served console (no WithConsoleSignInLinks, as serve) ignores
// ?once=, even for a link Redis holds: only `outbound dev` signs in so.
func TestConsoleServeIgnoresSignInLinks(t *testing.T) {
	h := newHarness(t, options{})
	tok := "a-link-token-only-dev-would-make-0123456789"
	sum := sha256.Sum256([]byte(tok))
	if err := h.rdb.Set(context.Background(), "outbound:console:once:"+hex.EncodeToString(sum[:]), "ops", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	res := consoleGet(t, h.url+"/console/signin?once="+tok, nil)
	for _, ck := range res.Cookies() {
		if ck.Name == "outbound_console" {
			t.Errorf("serve signed in by a link")
		}
	}
	if res.StatusCode != http.StatusOK {
		t.Errorf("?once= on serve: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

// The tenant's page in a browser: the windows it has used, and a
// suppression removed with its own button, which names the address for a
// screen reader; in Arabic the page reads right to left.
func TestConsoleTenantPageInBrowser(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, func(o *options) { o.rateLimit = ratelimit.Limit{PerMinute: 6, PerDay: 100} })
	for range 2 {
		if r := s.post(t, oneRecipient("beta")); r.status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
	}
	for _, email := range []string{"gone@example.com", "stays@example.com"} {
		if r := s.do("PUT", "/v1/tenants/beta/suppressions/"+email, s.adminToken, map[string]any{"reason": "asked to stop"}); r.status != http.StatusOK {
			t.Fatalf("suppress %s: %d %s", email, r.status, r.body)
		}
	}
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(s.url+"/console/signin"))
	fill(t, ctx, "token", s.adminToken)
	if st := press(t, ctx, "signin"); st != http.StatusOK {
		t.Fatalf("sign in: %d", st)
	}
	do(t, ctx, chromedp.Navigate(s.url+"/console/tenants/beta"))
	if used := eval[string](t, ctx, `document.querySelector('#rate-minute td.used').textContent + " | " + document.querySelector('#rate-day td.used').textContent`); used != "2 / 6 | 2 / 100" {
		t.Errorf("windows used: %q", used)
	}
	names := eval[string](t, ctx, `[...document.querySelectorAll('#suppressions button.remove')].map(b => b.getAttribute('aria-label')).join(', ')`)
	if names != "Remove gone@example.com, Remove stays@example.com" {
		t.Errorf("the remove buttons are named %q", names)
	}
	follow(t, ctx, `#suppressions button[aria-label="Remove gone@example.com"]`)
	if rows := eval[string](t, ctx, `[...document.querySelectorAll('#suppressions tbody th')].map(th => th.textContent).join(', ')`); rows != "stays@example.com" {
		t.Errorf("suppressions after removing one: %q", rows)
	}
	if r := s.do("GET", "/v1/tenants/beta/suppressions/gone@example.com", s.adminToken, nil); r.status != http.StatusNotFound {
		t.Errorf("the API still has the removed address: %d", r.status)
	}
	screenshot(t, ctx, "console-tenant-en.png")
	do(t, ctx, chromedp.Navigate(s.url+"/console/tenants/beta?lang=ar"))
	if got := eval[string](t, ctx, `document.documentElement.lang + " " + getComputedStyle(document.body).direction + " " + document.querySelector('#suppressions button.remove').getAttribute('aria-label')`); got != "ar rtl إزالة stays@example.com" {
		t.Errorf("Arabic tenant page: %q", got)
	}
}
