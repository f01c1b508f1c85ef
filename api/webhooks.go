package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/webhook"
)

// Webhooks is the webhook store.
type Webhooks interface {
	Put(ctx context.Context, h webhook.Hook) (webhook.Hook, error)
	Get(ctx context.Context, name string) (webhook.Hook, error)
	Delete(ctx context.Context, name string) error
	List(ctx context.Context) ([]webhook.Hook, error)
	Deliveries(ctx context.Context, name, after string, limit int) ([]webhook.Delivery, string, error)
	RetryDelivery(ctx context.Context, name, eventID string) (webhook.Delivery, error)
}

// webhookView never shows the secret, except (Secret) once, in the answer
// to the PUT that generated it.
type webhookView struct {
	Name          string    `json:"name"`
	URL           string    `json:"url"`
	Events        []string  `json:"events"`
	TenantID      string    `json:"tenant_id,omitempty"`
	EveryDeferral bool      `json:"every_deferral"`
	SecretSet     bool      `json:"secret_set"`
	Secret        string    `json:"secret,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func webhookViewOf(h webhook.Hook) webhookView {
	return webhookView{Name: h.Name, URL: h.URL, Events: h.Events, TenantID: h.TenantID, EveryDeferral: h.EveryDeferral,
		SecretSet: !h.Secret.IsZero(), CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt}
}

func (s *Server) listWebhooks(c echo.Context) error {
	hooks, err := s.Webhooks.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]webhookView, len(hooks))
	for i, h := range hooks {
		out[i] = webhookViewOf(h)
	}
	return c.JSON(http.StatusOK, map[string]any{"webhooks": out})
}

func (s *Server) getWebhook(c echo.Context) error {
	h, err := s.Webhooks.Get(c.Request().Context(), pathParam(c, "name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhookViewOf(h))
}

// putWebhook creates (201) or replaces (200) a webhook. Without a secret a
// new one is generated and shown in this answer only.
func (s *Server) putWebhook(c echo.Context) error {
	var in webhook.Input
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	name := pathParam(c, "name")
	existing, err := s.Webhooks.Get(ctx, name)
	var stored *webhook.Hook
	switch {
	case err == nil:
		stored = &existing
	case !errors.Is(err, webhook.ErrNotFound):
		return err
	}
	h, generated, err := webhook.Build(name, in, stored)
	if err != nil {
		return err
	}
	saved, err := s.Webhooks.Put(ctx, h)
	if err != nil {
		return err
	}
	v := webhookViewOf(saved)
	if generated {
		v.Secret = saved.Secret.Reveal()
	}
	status := http.StatusOK
	if stored == nil {
		status = http.StatusCreated
	}
	return c.JSON(status, v)
}

func (s *Server) deleteWebhook(c echo.Context) error {
	if err := s.Webhooks.Delete(c.Request().Context(), pathParam(c, "name")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type deliveryList struct {
	Deliveries []webhook.Delivery `json:"deliveries"`
	Next       string             `json:"next,omitempty"`
}

// webhookDeliveries pages through the delivery log, newest first:
// ?after=<next of the page before>&limit=N.
func (s *Server) webhookDeliveries(c echo.Context) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := s.Webhooks.Get(ctx, pathParam(c, "name")); err != nil {
		return err
	}
	ds, next, err := s.Webhooks.Deliveries(ctx, pathParam(c, "name"), c.QueryParam("after"), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deliveryList{Deliveries: ds, Next: next})
}

// retryWebhookDelivery sends one logged event to the webhook again
// (webhook.Store.RetryDelivery says when a repeat sends nothing more) and
// answers 202 with its newest logged attempt.
func (s *Server) retryWebhookDelivery(c echo.Context) error {
	d, err := s.Webhooks.RetryDelivery(c.Request().Context(), pathParam(c, "name"), pathParam(c, "id"))
	if errors.Is(err, webhook.ErrNoDelivery) {
		return problem(codeNotFound, "the webhook's log holds no attempt of that event to send again")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, d)
}
