// Package console is the operator's console: a few server-rendered pages
// at /console where a person signed in with an admin API key sees the
// queue's backlog and the last hour's outcomes, the tenants whose account
// is failing, a tenant's route, profile and recent messages, and a
// message's recipients and attempts; and pauses, resumes and cancels.
//
// It calls the same domain stores as the JSON API (the queue's listings
// and counters, the tenant store, the delivery service's Status and
// Cancel), through the small interfaces below, so what it does obeys the
// API's rules. Pages are html/template with the templates and the
// stylesheet embedded, and work without JavaScript.
//
// Signing in exchanges the API token for a session: a random id in an
// HttpOnly, SameSite=Strict cookie, and in Redis (under a hash of the id)
// the key's name and the session's CSRF token, for SessionTTL. Neither the
// token nor the session id is rendered or logged.
package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/lang"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/suppression"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
	"github.com/outbound-mail/outbound/internal/webhook"
	"github.com/outbound-mail/outbound/internal/webpage"
)

// Prefix is the path the console is served under.
const Prefix = "/console"

// Activity is what the console reads of the queue (queue.Queue), as
// GET /v1/messages, /v1/stats and /v1/tenants do.
type Activity interface {
	List(ctx context.Context, f queue.ListFilter) (queue.ListPage, error)
	Counts(ctx context.Context, tenantID string) (queue.Counts, error)
	Depths(ctx context.Context) ([]queue.PartitionDepth, error)
	KnownTenants(ctx context.Context, after string, limit int) ([]string, error)
}

// Tenants is the tenant store (tenant.Store): profiles, sending status and
// the known tenants' ids.
type Tenants interface {
	Known(ctx context.Context, after string, limit int) ([]string, error)
	Get(ctx context.Context, tenantID string) (tenant.Profile, error)
	GetStatus(ctx context.Context, tenantID string) (tenant.Status, error)
	SetStatus(ctx context.Context, tenantID string, st tenant.Status) (tenant.Status, error)
}

// Messages reads and cancels messages (the delivery service).
type Messages interface {
	Status(ctx context.Context, id string) (queue.Record, error)
	Cancel(ctx context.Context, id string) error
}

// Rates reads a tenant's per-minute and per-day recipient windows, in
// that order, without spending (the delivery service's RateUsage).
type Rates interface {
	RateUsage(ctx context.Context, tenantID string) ([]ratelimit.Result, error)
}

// Verifier tests a tenant's stored SMTP account without sending mail
// (the delivery service's Verify, as POST /v1/tenants/{tenant}/smtp/verify).
type Verifier interface {
	Verify(ctx context.Context, p tenant.Profile, stored bool) (transport.Verified, error)
}

// Suppressions reads a tenant's suppression list and removes entries
// (suppression.Store), as GET and DELETE /v1/tenants/{tenant}/suppressions do.
type Suppressions interface {
	List(ctx context.Context, tenantID, after string, limit int) ([]suppression.Entry, error)
	Remove(ctx context.Context, tenantID, email string) error
	RemoveUnlessBounced(ctx context.Context, tenantID, email string) error
}

// Webhooks is the webhook store (webhook.Store): the hooks, their
// delivery logs, and sending a logged event again.
type Webhooks interface {
	List(ctx context.Context) ([]webhook.Hook, error)
	Get(ctx context.Context, name string) (webhook.Hook, error)
	Deliveries(ctx context.Context, name, after string, limit int) ([]webhook.Delivery, string, error)
	RetryDelivery(ctx context.Context, name, eventID string) (webhook.Delivery, error)
}

// Deps are the console's stores.
type Deps struct {
	Redis        redis.UniversalClient // sessions
	Keys         apikey.Set
	Activity     Activity
	Tenants      Tenants
	Messages     Messages
	Verifier     Verifier
	Rates        Rates
	Suppressions Suppressions
	Webhooks     Webhooks
	Log          *slog.Logger
}

const (
	sessionCookie = "outbound_console"
	signinCookie  = "outbound_console_signin" // the sign-in form's CSRF token
	langCookie    = "outbound_console_lang"
	bodyLimit     = 16 << 10
	maxReason     = 512 // as PUT /v1/tenants/{tenant}/status
	csp           = "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'"
)

//go:embed templates/page.html
var templateFS embed.FS

//go:embed assets/console.css
var css []byte

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}).ParseFS(templateFS, "templates/page.html"))

// Console serves the console's pages.
type Console struct {
	d        Deps
	sessions sessions
	secure   bool // cookies are Secure when the public URL is https
	links    bool // one-time sign-in links (dev only: EnableSignInLinks)
	mux      *http.ServeMux
}

// New serves the console; publicURL's scheme decides whether its cookies
// are Secure.
func New(d Deps, publicURL string) *Console {
	c := &Console{d: d, sessions: sessions{rdb: d.Redis, keys: d.Keys}, secure: strings.HasPrefix(publicURL, "https://"),
		mux: http.NewServeMux()}
	m := c.mux
	m.HandleFunc("GET "+Prefix+"/assets/console.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(css)
	})
	m.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	m.HandleFunc("GET "+Prefix+"/signin", c.signinForm)
	m.HandleFunc("POST "+Prefix+"/signin", c.signin)
	m.HandleFunc("POST "+Prefix+"/signout", c.authed(c.signout))
	m.HandleFunc("GET "+Prefix+"/{$}", c.authed(c.overview))
	m.HandleFunc("GET "+Prefix+"/tenants", c.authed(c.tenants))
	m.HandleFunc("GET "+Prefix+"/tenants/{id}", c.authed(c.tenant))
	m.HandleFunc("POST "+Prefix+"/tenants/{id}/status", c.authed(c.setStatus))
	m.HandleFunc("POST "+Prefix+"/tenants/{id}/verify", c.authed(c.verify))
	m.HandleFunc("POST "+Prefix+"/tenants/{id}/suppressions/remove", c.authed(c.removeSuppression))
	m.HandleFunc("GET "+Prefix+"/messages/{id}", c.authed(c.message))
	m.HandleFunc("POST "+Prefix+"/messages/{id}/cancel", c.authed(c.cancel))
	m.HandleFunc("GET "+Prefix+"/webhooks", c.authed(c.operatorOnly(c.webhooks)))
	m.HandleFunc("GET "+Prefix+"/webhooks/{name}", c.authed(c.operatorOnly(c.webhook)))
	m.HandleFunc("POST "+Prefix+"/webhooks/{name}/deliveries/{id}/retry", c.authed(c.operatorOnly(c.retryDelivery)))
	m.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, c.newView(r, nil, "notfound"), http.StatusNotFound)
	})
	return c
}

// ServeHTTP answers one request; its log line names the route, never the
// cookie or a form's values.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	webpage.Guard(w.Header(), csp)
	if l := r.URL.Query().Get("lang"); l != "" {
		if lang.Known(l) {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: Prefix, MaxAge: 365 * 24 * 3600,
				Secure: c.secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		}
	}
	rec := webpage.Record(w)
	c.mux.ServeHTTP(rec, r)
	c.d.Log.Info("console", "method", r.Method, "route", r.Pattern, "status", rec.Status,
		"duration_ms", time.Since(start).Milliseconds())
}

// handler is a page for a signed-in person.
type handler func(w http.ResponseWriter, r *http.Request, ses session)

// authed opens the request's session, sending a browser without one to
// the sign-in page, and refuses a POST whose form does not carry the
// session's CSRF token.
func (c *Console) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var id string
		if ck, err := r.Cookie(sessionCookie); err == nil {
			id = ck.Value
		}
		ses, err := c.sessions.open(r.Context(), id)
		if errors.Is(err, errNoSession) {
			if r.Method == http.MethodPost {
				c.render(w, r, c.newView(r, nil, "refused"), http.StatusForbidden)
				return
			}
			http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
			return
		}
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, bodyLimit)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(ses.CSRF)) != 1 {
				c.render(w, r, c.newView(r, &ses, "refused"), http.StatusForbidden)
				return
			}
		}
		h(w, r, ses)
	}
}

func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	if tok := r.URL.Query().Get("once"); tok != "" && c.links && c.linkSignin(w, r, tok) {
		return
	}
	v := c.newView(r, nil, "signin")
	v.CSRF = c.signinToken(w, r)
	c.render(w, r, v, http.StatusOK)
}

// signinToken is the sign-in form's CSRF token: the browser's cookie's, or
// a new one in a new cookie (double submit; a page elsewhere can neither
// read the cookie nor, SameSite=Strict, have it sent).
func (c *Console) signinToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(signinCookie); err == nil && len(ck.Value) >= 32 {
		return ck.Value
	}
	tok := randomToken()
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: tok, Path: Prefix + "/signin", HttpOnly: true,
		Secure: c.secure, SameSite: http.SameSiteStrictMode})
	return tok
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, bodyLimit)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	ck, err := r.Cookie(signinCookie)
	if err != nil || len(ck.Value) < 32 || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(ck.Value)) != 1 {
		c.render(w, r, c.newView(r, nil, "refused"), http.StatusForbidden)
		return
	}
	key, ok := c.d.Keys.Lookup(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok || key.Scope != apikey.ScopeAdmin {
		v := c.newView(r, nil, "signin")
		v.CSRF = ck.Value
		v.Errors = []fieldError{{Field: "token", Text: v.T("signin.refused")}}
		c.render(w, r, v, http.StatusUnauthorized)
		return
	}
	c.startSession(w, r, key)
}

// startSession signs the browser in as key and sends it to the overview.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, key apikey.Key) {
	id, err := c.sessions.create(r.Context(), key)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: Prefix, MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Path: Prefix + "/signin", MaxAge: -1, HttpOnly: true,
		Secure: c.secure, SameSite: http.SameSiteStrictMode})
	c.d.Log.Info("console sign-in", "key", key.Name)
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, ses session) {
	ck, _ := r.Cookie(sessionCookie) // authed found it
	if err := c.sessions.delete(r.Context(), ck.Value); err != nil {
		c.unavailable(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: Prefix, MaxAge: -1, HttpOnly: true,
		Secure: c.secure, SameSite: http.SameSiteStrictMode})
	c.d.Log.Info("console sign-out", "key", ses.key.Name)
	http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
}

func (c *Console) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	c.d.Log.Error("console", "error", err)
	c.render(w, r, c.newView(r, nil, "unavailable"), http.StatusServiceUnavailable)
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request, ses *session) {
	c.render(w, r, c.newView(r, ses, "notfound"), http.StatusNotFound)
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, v view, status int) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if err := page.Execute(w, v); err != nil {
		c.d.Log.Error("console: render", "error", err)
	}
}
