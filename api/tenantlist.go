package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/delivery"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// TenantDirectory names the tenants that have a profile, a status or a
// suppression (tenant.Store.Known).
type TenantDirectory interface {
	Known(ctx context.Context, after string, limit int) ([]string, error)
}

type tenantProfileView struct {
	Enabled   bool              `json:"enabled"`
	Provider  string            `json:"provider,omitempty"`
	Host      string            `json:"host"`
	Email     string            `json:"email"`
	LastError *tenant.LastError `json:"last_error,omitempty"`
}

type outcomesView struct {
	Sent       int64 `json:"sent"`
	Deferred   int64 `json:"deferred"`
	Failed     int64 `json:"failed"`
	Suppressed int64 `json:"suppressed"`
}

type tenantSummary struct {
	TenantID    string             `json:"tenant_id"`
	Route       string             `json:"route"`
	Profile     *tenantProfileView `json:"profile,omitempty"`
	Sending     string             `json:"sending"`
	Reason      string             `json:"reason,omitempty"`
	CircuitOpen bool               `json:"circuit_open"`
	Held        int64              `json:"held"`
	Last24h     outcomesView       `json:"last_24h"`
}

type tenantList struct {
	Tenants []tenantSummary `json:"tenants"`
	Next    string          `json:"next,omitempty"`
}

// listTenants pages through every known tenant by id, with a summary of
// each: those with a profile, a status or a suppression (Tenants) and
// those that queued mail (Activity), merged. A page reads its own tenants
// only (a few round trips each).
func (s *Server) listTenants(c echo.Context) error {
	limit := 50
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return problem(codeInvalidQuery, "limit is 1 to 1000")
		}
		limit = n
	}
	after := c.QueryParam("after")
	if after != "" && !tenant.ValidID(after) {
		return problem(codeInvalidQuery, "after is not the next of an earlier page")
	}
	ctx := c.Request().Context()
	named, err := s.Tenants.Known(ctx, after, limit)
	if err != nil {
		return err
	}
	sending, err := s.Activity.KnownTenants(ctx, after, limit)
	if err != nil {
		return err
	}
	ids := slices.Compact(slices.Sorted(slices.Values(append(named, sending...))))
	ids = ids[:min(len(ids), limit)]
	out := tenantList{Tenants: make([]tenantSummary, 0, len(ids))}
	for _, id := range ids {
		sum, err := s.tenantSummary(ctx, id)
		if err != nil {
			return err
		}
		out.Tenants = append(out.Tenants, sum)
	}
	if len(ids) == limit {
		out.Next = ids[len(ids)-1]
	}
	return c.JSON(http.StatusOK, out)
}

// tenantSummary is one tenant's route, profile (never a secret), sending
// status, circuit, held messages and outcomes of the last 24 hours.
func (s *Server) tenantSummary(ctx context.Context, id string) (tenantSummary, error) {
	sum := tenantSummary{TenantID: id, Route: "default"}
	p, err := s.Profiles.Get(ctx, id)
	switch {
	case err == nil:
		sum.Profile = &tenantProfileView{Enabled: p.Enabled, Provider: p.Provider, Host: p.Host, Email: p.Email, LastError: p.LastError}
		if p.Enabled {
			sum.Route = "tenant"
		}
		sum.CircuitOpen = p.LastError != nil && p.LastError.Code == delivery.CodeCircuitOpen
	case !errors.Is(err, tenant.ErrNotFound):
		return tenantSummary{}, err
	}
	st, err := s.Status.GetStatus(ctx, id)
	if err != nil {
		return tenantSummary{}, err
	}
	sum.Sending, sum.Reason = st.Sending, st.Reason
	if sum.Held, err = s.Activity.Held(ctx, id); err != nil {
		return tenantSummary{}, err
	}
	counts, err := s.Activity.Counts(ctx, id)
	if err != nil {
		return tenantSummary{}, err
	}
	for _, b := range counts.Hours {
		sum.Last24h.Sent += b.Counts[queue.StatusSent]
		sum.Last24h.Deferred += b.Counts[queue.StatusDeferred]
		sum.Last24h.Failed += b.Counts[queue.StatusFailed]
		sum.Last24h.Suppressed += b.Counts[queue.StatusSuppressed]
	}
	return sum, nil
}
