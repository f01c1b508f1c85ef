package console

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/outbound-mail/outbound/internal/webhook"
)

// operatorOnly shows the page to the operator's key only: webhooks span
// tenants, so the API keeps them the operator's too. Another key finds
// nothing there.
func (c *Console) operatorOnly(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, ses session) {
		if !ses.key.Operator() || c.d.Webhooks == nil {
			c.notFound(w, r, &ses)
			return
		}
		h(w, r, ses)
	}
}

func (c *Console) webhooks(w http.ResponseWriter, r *http.Request, ses session) {
	hooks, err := c.d.Webhooks.List(r.Context())
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	v := c.newView(r, &ses, "webhooks")
	v.Data = hooks
	c.render(w, r, v, http.StatusOK)
}

type webhookData struct {
	Hook       webhook.Hook // its secret is not rendered: the template names the fields it shows
	Deliveries []webhook.Delivery
	Next       string
}

// webhook is a hook's delivery log, newest first, a page at a time, with
// a button to send each logged event again.
func (c *Console) webhook(w http.ResponseWriter, r *http.Request, ses session) {
	ctx := r.Context()
	h, err := c.d.Webhooks.Get(ctx, r.PathValue("name"))
	if errors.Is(err, webhook.ErrNotFound) {
		c.notFound(w, r, &ses)
		return
	}
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	ds, next, err := c.d.Webhooks.Deliveries(ctx, h.Name, r.URL.Query().Get("after"), 50)
	if errors.Is(err, webhook.ErrBadCursor) {
		c.notFound(w, r, &ses)
		return
	}
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	v := c.newView(r, &ses, "webhook")
	if r.URL.Query().Get("retried") != "" {
		v.Notice = v.T("hooks.retried")
	}
	v.Data = webhookData{Hook: h, Deliveries: ds, Next: next}
	c.render(w, r, v, http.StatusOK)
}

// retryDelivery sends a logged event again through the store's
// RetryDelivery, as POST /v1/webhooks/{name}/deliveries/{id}/retry does.
func (c *Console) retryDelivery(w http.ResponseWriter, r *http.Request, ses session) {
	name, id := r.PathValue("name"), r.PathValue("id")
	_, err := c.d.Webhooks.RetryDelivery(r.Context(), name, id)
	if errors.Is(err, webhook.ErrNoDelivery) || errors.Is(err, webhook.ErrNotFound) {
		c.notFound(w, r, &ses)
		return
	}
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	c.d.Log.Info("console: webhook retry", "key", ses.key.Name, "webhook", name, "event_id", id)
	http.Redirect(w, r, Prefix+"/webhooks/"+url.PathEscape(name)+"?retried=1", http.StatusSeeOther)
}
