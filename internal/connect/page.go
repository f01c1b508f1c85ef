// Package connect is the page where a tenant connects its own mailbox:
// a product asks the API for a link (POST /v1/tenants/{tenant}/connect),
// sends the tenant to it, and gets the tenant back on its return URL once
// the account is tested and saved, or the tenant cancelled.
//
// The page is server-rendered HTML forms (html/template, templates and
// CSS embedded) and works without JavaScript. It calls the same domain
// services as the JSON API: the delivery service's Verify for "Test
// connection" and the tenant store for Save, so a profile saved here
// obeys the same rules as one PUT through the API.
//
// It is its own http.Handler, mounted by internal/app beside the API, not
// an API route: the API answers JSON and logs request paths, and this
// page's path holds the link's secret token.
package connect

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/outbound-mail/outbound/internal/lang"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
	"github.com/outbound-mail/outbound/internal/webpage"
)

// ProfileStore reads and writes tenants' profiles (tenant.Store).
type ProfileStore interface {
	Get(ctx context.Context, tenantID string) (tenant.Profile, error)
	Put(ctx context.Context, p tenant.Profile, expectVersion int64) (tenant.Profile, error)
}

// Verifier tests an SMTP account without sending mail (the delivery
// service's Verify, which dials through the egress guard).
type Verifier interface {
	Verify(ctx context.Context, p tenant.Profile, stored bool) (transport.Verified, error)
}

// Prefix is the path the page is served under.
const Prefix = "/connect/"

const (
	cssPath    = Prefix + "assets/connect.css"
	csrfCookie = "outbound_connect"
	bodyLimit  = 64 << 10
)

//go:embed templates/page.html
var templateFS embed.FS

//go:embed assets/connect.css
var css []byte

var page = template.Must(template.ParseFS(templateFS, "templates/page.html"))

// Page serves GET and POST /connect/{token} and the page's stylesheet.
type Page struct {
	links    *Links
	profiles ProfileStore
	verifier Verifier
	log      *slog.Logger
	secure   bool           // cookies are Secure when the public URL is https
	csp      string         // Content-Security-Policy of every answer
	apps     map[string]App // sign-in apps by platform (see SignIn)
	client   *http.Client   // the sign-in's token and key requests
	keysMu   sync.Mutex
	keys     map[string]*oidc.RemoteKeySet // signing keys by JWKS URL (see keySet)
	mx       MXResolver                    // suggestions for custom domains (nil: net.DefaultResolver)
}

// NewPage serves links' pages, saving profiles to profiles after verifier
// accepted them.
func NewPage(links *Links, profiles ProfileStore, verifier Verifier, log *slog.Logger) *Page {
	return &Page{links: links, profiles: profiles, verifier: verifier, log: log,
		secure: strings.HasPrefix(links.publicURL, "https://"), csp: policy(links.origins())}
}

// policy allows the page's own resources only. Its forms post to itself
// and redirect to the product or to a sign-in app's platform (form-action
// covers redirects, and Chromium enforces it on a form's 303), and only
// the product's pages may frame it.
func policy(origins []string, signIn ...string) string {
	ancestors := "'none'"
	if len(origins) > 0 {
		ancestors = strings.Join(origins, " ")
	}
	actions := strings.TrimSpace("'self' " + strings.Join(append(slices.Clone(origins), signIn...), " "))
	return "default-src 'self'; base-uri 'none'; object-src 'none'; form-action " + actions + "; frame-ancestors " + ancestors
}

// ServeHTTP routes the page's requests. Its log line never holds the path:
// the path is the link's secret.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	webpage.Guard(w.Header(), p.csp)
	rec := webpage.Record(w)
	tenantID, action := p.route(rec, r)
	p.log.Info("connect page", "method", r.Method, "action", action, "status", rec.Status, "tenant_id", tenantID,
		"duration_ms", time.Since(start).Milliseconds())
}

func (p *Page) route(w http.ResponseWriter, r *http.Request) (tenantID, action string) {
	if r.URL.Path == cssPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(css)
		return "", "css"
	}
	// GET only: a HEAD would spend the sign-in's state.
	if r.URL.Path == CallbackPath && r.Method == http.MethodGet && p.apps != nil {
		return p.callback(w, r)
	}
	token := strings.TrimPrefix(r.URL.Path, Prefix)
	loc := catalogue.Pick("", r.Header.Get("Accept-Language"))
	if token == "" || strings.Contains(token, "/") {
		p.render(w, gone(loc, "not_found", ""), http.StatusNotFound)
		return "", "not_found"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return "", "method"
	}
	link, err := p.links.Open(r.Context(), token)
	if errors.Is(err, ErrLinkNotFound) {
		p.render(w, gone(loc, "not_found", ""), http.StatusNotFound)
		return "", "not_found"
	}
	if err != nil && link.TenantID == "" {
		p.unavailable(w, loc, err)
		return "", "error"
	}
	loc = catalogue.Pick(link.Locale, r.Header.Get("Accept-Language"))
	if err != nil {
		p.renderGone(w, loc, link, err)
		return link.TenantID, "gone"
	}
	s := &session{Page: p, w: w, r: r, link: link, loc: loc, action: Prefix + token}
	if r.Method != http.MethodPost {
		s.setCookie()
		s.start()
		return link.TenantID, "open"
	}
	r.Body = http.MaxBytesReader(w, r.Body, bodyLimit)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return link.TenantID, "bad_form"
	}
	if !s.csrfOK() {
		p.render(w, view{loc: loc, Kind: "refused", Reload: s.action}, http.StatusForbidden)
		return link.TenantID, "csrf_refused"
	}
	action = r.PostForm.Get("action")
	s.submit(action)
	return link.TenantID, action
}

// renderGone is the page of a link that works no more, with the way back
// to the product.
func (p *Page) renderGone(w http.ResponseWriter, loc lang.Words, link Link, err error) {
	reason, status := "expired", "expired"
	switch {
	case errors.Is(err, ErrLinkDone):
		reason, status = "done", "connected"
	case errors.Is(err, ErrLinkUsedUp):
		reason = "used_up"
	}
	p.render(w, gone(loc, reason, returnTo(link, status)), http.StatusGone)
}

func (p *Page) unavailable(w http.ResponseWriter, loc lang.Words, err error) {
	p.log.Error("connect page", "error", err)
	p.render(w, view{loc: loc, Kind: "message", Title: loc.Text("unavailable.title"), Body: loc.Text("unavailable.body")},
		http.StatusServiceUnavailable)
}

func (p *Page) render(w http.ResponseWriter, v view, status int) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := page.Execute(w, v); err != nil {
		p.log.Error("connect page: render", "error", err)
	}
}

// returnTo is the link's return URL with status and tenant added to its
// query, as the product reads them.
func returnTo(link Link, status string) string {
	u, err := url.Parse(link.ReturnURL)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("status", status)
	q.Set("tenant", link.TenantID)
	u.RawQuery = q.Encode()
	return u.String()
}

// setCookie gives the browser the link's CSRF token in a SameSite=Strict
// cookie scoped to the link's path; the page's forms carry it too, and a
// POST must bring both, equal to the link's (double submit, bound to the
// link).
func (s *session) setCookie() {
	http.SetCookie(s.w, &http.Cookie{Name: csrfCookie, Value: s.link.CSRF, Path: s.action, HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteStrictMode, Expires: s.link.ExpiresAt})
}

func (s *session) csrfOK() bool {
	c, err := s.r.Cookie(csrfCookie)
	if err != nil || s.link.CSRF == "" {
		return false
	}
	want := []byte(s.link.CSRF)
	return subtle.ConstantTimeCompare([]byte(c.Value), want) == 1 &&
		subtle.ConstantTimeCompare([]byte(s.r.PostForm.Get("csrf")), want) == 1
}
