package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outbound-mail/outbound/internal/lang"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/suppression"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
	"github.com/outbound-mail/outbound/internal/webhook"
)

// view is what the template renders: the page's kind and its data, in
// the request's locale.
type view struct {
	loc        lang.Words
	Lang, Dir  string
	Page       string // which block of the template
	SignedIn   bool
	Operator   bool
	CSRF       string // the form's token: the session's, or the sign-in form's
	LangSwitch string // this page in the other locale
	Errors     []fieldError
	Notice     string
	Data       any
}

type fieldError struct{ Field, Text string }

// T is the locale's words for key.
func (v view) T(key string, args ...any) string { return v.loc.Text(key, args...) }

func (c *Console) newView(r *http.Request, ses *session, kind string) view {
	lang := r.URL.Query().Get("lang")
	if lang == "" {
		if ck, err := r.Cookie(langCookie); err == nil {
			lang = ck.Value
		}
	}
	loc := catalogue.Pick(lang, r.Header.Get("Accept-Language"))
	q := r.URL.Query()
	q.Set("lang", loc.Text("nav.language.code"))
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	if r.Method != http.MethodGet {
		u.Path = Prefix + "/"
	}
	v := view{loc: loc, Lang: loc.Tag, Dir: loc.Dir, Page: kind, LangSwitch: u.String()}
	if ses != nil {
		v.SignedIn, v.Operator, v.CSRF = true, ses.key.Operator(), ses.CSRF
	}
	return v
}

// failing is a tenant whose account's last attempt failed.
type failing struct {
	TenantID string
	Error    tenant.LastError
	Circuit  bool
}

type overviewData struct {
	Depths  []queue.PartitionDepth
	Chart   chart
	Totals  map[string]int64
	Failing []failing
	Scanned int // tenants looked at for Failing, when the scan stopped at its bound
}

// failingScan bounds the tenants the overview reads profiles of; past it
// the page says how many it looked at.
const failingScan = 500

func (c *Console) overview(w http.ResponseWriter, r *http.Request, ses session) {
	ctx := r.Context()
	var d overviewData
	var err error
	bound := ses.key.Tenant // "": the operator's, every tenant
	if bound == "" {
		if d.Depths, err = c.d.Activity.Depths(ctx); err != nil {
			c.unavailable(w, r, err)
			return
		}
	}
	counts, err := c.d.Activity.Counts(ctx, bound)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	v := c.newView(r, &ses, "overview")
	d.Chart = drawChart(counts.Minutes, v.loc)
	d.Totals = map[string]int64{}
	for _, b := range counts.Minutes {
		for _, s := range series {
			d.Totals[string(s)] += b.Counts[s]
		}
	}
	ids := []string{bound}
	if bound == "" {
		if ids, err = c.tenantIDs(r, "", failingScan); err != nil {
			c.unavailable(w, r, err)
			return
		}
		if len(ids) == failingScan {
			d.Scanned = failingScan
		}
	}
	for _, id := range ids {
		p, err := c.d.Tenants.Get(ctx, id)
		if errors.Is(err, tenant.ErrNotFound) {
			continue
		}
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		if p.Enabled && p.LastError != nil {
			d.Failing = append(d.Failing, failing{TenantID: id, Error: *p.LastError, Circuit: p.LastError.Code == "circuit_open"})
		}
	}
	v.Data = d
	c.render(w, r, v, http.StatusOK)
}

// tenantIDs are the known tenants after after, by id: those with a
// profile, a status or a suppression and those that queued mail, merged
// as GET /v1/tenants merges them.
func (c *Console) tenantIDs(r *http.Request, after string, limit int) ([]string, error) {
	named, err := c.d.Tenants.Known(r.Context(), after, limit)
	if err != nil {
		return nil, err
	}
	sending, err := c.d.Activity.KnownTenants(r.Context(), after, limit)
	if err != nil {
		return nil, err
	}
	ids := slices.Compact(slices.Sorted(slices.Values(append(named, sending...))))
	return ids[:min(len(ids), limit)], nil
}

type tenantRow struct {
	ID      string
	Route   string
	Sending string
	Error   string
}

type tenantsData struct {
	Query string
	Rows  []tenantRow
	Next  string
}

const tenantsPage = 50

// tenants lists the known tenants whose id starts with ?q=, a page at a
// time; a tenant-bound key sees its own only.
func (c *Console) tenants(w http.ResponseWriter, r *http.Request, ses session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	after := r.URL.Query().Get("after")
	d := tenantsData{Query: q}
	var ids []string
	if ses.key.Tenant != "" {
		if strings.HasPrefix(ses.key.Tenant, q) {
			ids = []string{ses.key.Tenant}
		}
	} else {
		// Ids are sorted, so those starting with q follow q's own
		// predecessor: read from there until an id is past them (a few
		// pages at most).
		from := after
		if q != "" && from < q {
			from = q[:len(q)-1]
		}
	scan:
		for range 20 {
			page, err := c.tenantIDs(r, from, tenantsPage)
			if err != nil {
				c.unavailable(w, r, err)
				return
			}
			for _, id := range page {
				if strings.HasPrefix(id, q) {
					ids = append(ids, id)
				} else if id > q {
					break scan
				}
				if len(ids) == tenantsPage {
					d.Next = id
					break scan
				}
			}
			if len(page) < tenantsPage {
				break
			}
			from = page[len(page)-1]
		}
	}
	for _, id := range ids {
		row := tenantRow{ID: id, Route: "default"}
		p, err := c.d.Tenants.Get(r.Context(), id)
		switch {
		case err == nil:
			if p.Enabled {
				row.Route = "tenant"
			}
			if p.LastError != nil {
				row.Error = p.LastError.Code
			}
		case !errors.Is(err, tenant.ErrNotFound):
			c.unavailable(w, r, err)
			return
		}
		st, err := c.d.Tenants.GetStatus(r.Context(), id)
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		row.Sending = st.Sending
		d.Rows = append(d.Rows, row)
	}
	v := c.newView(r, &ses, "tenants")
	v.Data = d
	c.render(w, r, v, http.StatusOK)
}

type tenantData struct {
	ID       string
	Route    string
	Profile  *tenant.Profile // its secrets are not rendered: the template names the fields it shows
	Status   tenant.Status
	Messages []queue.Listed
	// Suppressed is the first page of the suppression list, More set
	// when there are more than it shows.
	Suppressed []suppression.Entry
	More       bool
	Rate       []rateRow // its recipient windows' usage
}

// rateRow is one rate window's usage: of Limit recipients, Used are spent
// (Limit less what could go at once), full again in Reset.
type rateRow struct {
	Window      string // minute or day
	Used, Limit int
	Reset       string
}

// suppressionsShown is how many of a tenant's suppressions its page lists.
const suppressionsShown = 50

// tenantParam is the path's tenant id, when the session may see it.
func tenantParam(r *http.Request, ses session) (string, bool) {
	id := r.PathValue("id")
	return id, tenant.ValidID(id) && ses.key.AllowsTenant(id)
}

func (c *Console) tenant(w http.ResponseWriter, r *http.Request, ses session) {
	id, ok := tenantParam(r, ses)
	if !ok {
		c.notFound(w, r, &ses)
		return
	}
	c.renderTenant(w, r, c.newView(r, &ses, "tenant"), id, http.StatusOK)
}

// renderTenant is the tenant's page, with v's notice or errors.
func (c *Console) renderTenant(w http.ResponseWriter, r *http.Request, v view, id string, status int) {
	ctx := r.Context()
	d := tenantData{ID: id, Route: "default"}
	p, err := c.d.Tenants.Get(ctx, id)
	switch {
	case err == nil:
		d.Profile = &p
		if p.Enabled {
			d.Route = "tenant"
		}
	case !errors.Is(err, tenant.ErrNotFound):
		c.unavailable(w, r, err)
		return
	}
	if d.Status, err = c.d.Tenants.GetStatus(ctx, id); err != nil {
		c.unavailable(w, r, err)
		return
	}
	page, err := c.d.Activity.List(ctx, queue.ListFilter{TenantID: id, Limit: 20})
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	d.Messages = page.Messages
	if c.d.Rates != nil {
		rs, err := c.d.Rates.RateUsage(ctx, id)
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		for i, res := range rs {
			d.Rate = append(d.Rate, rateRow{Window: []string{"minute", "day"}[min(i, 1)], Used: res.Limit - res.Remaining,
				Limit: res.Limit, Reset: res.ResetAfter.Round(time.Second).String()})
		}
	}
	if c.d.Suppressions != nil {
		if d.Suppressed, err = c.d.Suppressions.List(ctx, id, "", suppressionsShown+1); err != nil {
			c.unavailable(w, r, err)
			return
		}
		if len(d.Suppressed) > suppressionsShown {
			d.Suppressed, d.More = d.Suppressed[:suppressionsShown], true
		}
	}
	v.Data = d
	c.render(w, r, v, status)
}

// verify tests the tenant's stored account as POST .../smtp/verify does
// with no body, and shows the result on the tenant's page.
func (c *Console) verify(w http.ResponseWriter, r *http.Request, ses session) {
	id, ok := tenantParam(r, ses)
	if !ok || c.d.Verifier == nil {
		c.notFound(w, r, &ses)
		return
	}
	p, err := c.d.Tenants.Get(r.Context(), id)
	if errors.Is(err, tenant.ErrNotFound) {
		c.notFound(w, r, &ses)
		return
	}
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	v := c.newView(r, &ses, "tenant")
	res, err := c.d.Verifier.Verify(r.Context(), p, true)
	var te *transport.Error
	switch {
	case errors.As(err, &te):
		text := te.Code
		if te.SMTPCode != 0 {
			text += " " + strconv.Itoa(te.SMTPCode)
		}
		text += ": " + te.Message
		if te.Hint != "" {
			text += " " + te.Hint
		}
		v.Errors = []fieldError{{Text: v.T("verify.failed", text)}}
	case err != nil:
		c.unavailable(w, r, err)
		return
	default:
		v.Notice = v.T("verify.ok", res.TLSVersion, res.Mechanism, res.Latency.Milliseconds())
	}
	c.renderTenant(w, r, v, id, http.StatusOK)
}

// setStatus pauses or resumes a tenant through the tenant store's
// SetStatus, as PUT /v1/tenants/{tenant}/status does; like that route it
// is the operator's only.
func (c *Console) setStatus(w http.ResponseWriter, r *http.Request, ses session) {
	id, ok := tenantParam(r, ses)
	if !ok {
		c.notFound(w, r, &ses)
		return
	}
	if !ses.key.Operator() {
		v := c.newView(r, &ses, "notice")
		v.Notice = v.T("status.operator")
		c.render(w, r, v, http.StatusForbidden)
		return
	}
	st := tenant.Status{Sending: tenant.SendingActive}
	if r.PostForm.Get("action") == "pause" {
		st = tenant.Status{Sending: tenant.SendingPaused, Reason: r.PostForm.Get("reason")}
	}
	if len(st.Reason) > maxReason {
		st.Reason = st.Reason[:maxReason]
	}
	if _, err := c.d.Tenants.SetStatus(r.Context(), id, st); err != nil {
		c.unavailable(w, r, err)
		return
	}
	c.d.Log.Info("console: tenant status", "key", ses.key.Name, "tenant_id", id, "sending", st.Sending)
	http.Redirect(w, r, Prefix+"/tenants/"+id, http.StatusSeeOther)
}

type messageData struct {
	Record      queue.Record
	Cancellable bool
	Events      []webhook.Delivery // the webhook events logged about it
}

// record is the path's message, when the session may see it: another
// tenant's message does not exist, as in GET /v1/messages/{id}.
func (c *Console) record(w http.ResponseWriter, r *http.Request, ses session) (queue.Record, bool) {
	rec, err := c.d.Messages.Status(r.Context(), r.PathValue("id"))
	if errors.Is(err, queue.ErrNotFound) || (err == nil && !ses.key.AllowsTenant(rec.TenantID)) {
		c.notFound(w, r, &ses)
		return queue.Record{}, false
	}
	if err != nil {
		c.unavailable(w, r, err)
		return queue.Record{}, false
	}
	return rec, true
}

func (c *Console) message(w http.ResponseWriter, r *http.Request, ses session) {
	rec, ok := c.record(w, r, ses)
	if !ok {
		return
	}
	v := c.newView(r, &ses, "msg")
	if r.URL.Query().Get("cancelled") == "1" {
		v.Notice = v.T("msg.cancelled")
	}
	c.renderMessage(w, r, v, rec, http.StatusOK)
}

func (c *Console) renderMessage(w http.ResponseWriter, r *http.Request, v view, rec queue.Record, status int) {
	d := messageData{Record: rec}
	switch rec.Status {
	case queue.StatusScheduled, queue.StatusQueued, queue.StatusDeferred:
		d.Cancellable = true
	}
	events, err := c.messageEvents(r, rec.ID)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	d.Events = events
	v.Data = d
	c.render(w, r, v, status)
}

// cancel takes a message back with the Cancel the API's DELETE uses.
func (c *Console) cancel(w http.ResponseWriter, r *http.Request, ses session) {
	rec, ok := c.record(w, r, ses)
	if !ok {
		return
	}
	err := c.d.Messages.Cancel(r.Context(), rec.ID)
	var nc *queue.NotCancellableError
	if errors.As(err, &nc) {
		v := c.newView(r, &ses, "msg")
		v.Errors = []fieldError{{Text: v.T("msg.notcancellable")}}
		rec.Status = nc.Status
		c.renderMessage(w, r, v, rec, http.StatusConflict)
		return
	}
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	c.d.Log.Info("console: cancel", "key", ses.key.Name, "tenant_id", rec.TenantID, "message_id", rec.ID)
	http.Redirect(w, r, Prefix+"/messages/"+rec.ID+"?cancelled=1", http.StatusSeeOther)
}

// eventsScan bounds how far back each webhook's delivery log is read for
// a message's events: the record itself carries none, so its page shows
// what the logs still hold of it.
const eventsScan = 200

// messageEvents are the webhook deliveries logged about message id, every
// webhook's, newest first per webhook.
func (c *Console) messageEvents(r *http.Request, id string) ([]webhook.Delivery, error) {
	if c.d.Webhooks == nil {
		return nil, nil
	}
	hooks, err := c.d.Webhooks.List(r.Context())
	if err != nil {
		return nil, err
	}
	var out []webhook.Delivery
	for _, h := range hooks {
		ds, _, err := c.d.Webhooks.Deliveries(r.Context(), h.Name, "", eventsScan)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d.MessageID == id {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// removeSuppression takes one address off the tenant's list through the
// store call DELETE /v1/tenants/{tenant}/suppressions/{email} uses, with
// its rule: an entry a hard bounce added is the operator's to remove.
func (c *Console) removeSuppression(w http.ResponseWriter, r *http.Request, ses session) {
	id, ok := tenantParam(r, ses)
	if !ok || c.d.Suppressions == nil {
		c.notFound(w, r, &ses)
		return
	}
	email := r.PostForm.Get("email")
	remove := c.d.Suppressions.Remove
	if !ses.key.Operator() {
		remove = c.d.Suppressions.RemoveUnlessBounced
	}
	err := remove(r.Context(), id, email)
	switch {
	case errors.Is(err, suppression.ErrBounced):
		v := c.newView(r, &ses, "tenant")
		v.Errors = []fieldError{{Text: v.T("supp.bounced", email)}}
		c.renderTenant(w, r, v, id, http.StatusForbidden)
		return
	case errors.Is(err, suppression.ErrNotFound):
		// Already gone (another tab, the API): the page shows the list as it is.
	case err != nil:
		c.unavailable(w, r, err)
		return
	}
	c.d.Log.Info("console: suppression removed", "key", ses.key.Name, "tenant_id", id)
	http.Redirect(w, r, Prefix+"/tenants/"+id, http.StatusSeeOther)
}
