package api

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// Activity is what the operator's listings read: the messages' indexes,
// the outcome counters and the queue's backlog.
type Activity interface {
	List(ctx context.Context, f queue.ListFilter) (queue.ListPage, error)
	Counts(ctx context.Context, tenantID string) (queue.Counts, error)
	Depths(ctx context.Context) ([]queue.PartitionDepth, error)
	KnownTenants(ctx context.Context, after string, limit int) ([]string, error)
	Held(ctx context.Context, tenantID string) (int64, error)
}

type messageSummary struct {
	ID            string       `json:"id"`
	TenantID      string       `json:"tenant_id"`
	Status        queue.Status `json:"status"`
	Route         string       `json:"route"`
	Tags          []string     `json:"tags"`
	CreatedAt     time.Time    `json:"created_at"`
	UpdatedAt     time.Time    `json:"updated_at"`
	SentAt        *time.Time   `json:"sent_at"`
	SendAt        *time.Time   `json:"send_at,omitempty"`
	NextAttemptAt *time.Time   `json:"next_attempt_at,omitempty"`
	Error         *string      `json:"error"`
}

type messageList struct {
	Messages []messageSummary `json:"messages"`
	Next     string           `json:"next,omitempty"`
}

// listMessages pages through the messages accepted within the retention,
// newest first (queue.List has the indexes and the bound of one page). A
// tenant-bound key lists its own tenant's, named or not.
func (s *Server) listMessages(c echo.Context) error {
	f, err := listFilter(c)
	if err != nil {
		return err
	}
	key := apiKey(c)
	if f.TenantID == "" {
		f.TenantID = key.Tenant
	}
	if !key.AllowsTenant(f.TenantID) {
		return problem(codeForbidden, "this key is bound to another tenant")
	}
	if f.TenantID == "" && (f.To != "" || f.Tag != "") {
		return problem(codeInvalidQuery, "to and tag need tenant_id")
	}
	page, err := s.Activity.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := messageList{Messages: make([]messageSummary, 0, len(page.Messages)), Next: page.Next}
	for _, m := range page.Messages {
		v := messageSummary{ID: m.ID, TenantID: m.TenantID, Status: m.Status, Route: m.Route, Tags: m.Tags,
			CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, SentAt: timeOrNil(m.SentAt), SendAt: timeOrNil(m.SendAt)}
		if m.Status == queue.StatusDeferred || m.Status == queue.StatusScheduled {
			v.NextAttemptAt = timeOrNil(m.NextAttemptAt)
		}
		if v.Tags == nil {
			v.Tags = []string{}
		}
		if m.Error != "" {
			v.Error = &m.Error
		}
		out.Messages = append(out.Messages, v)
	}
	return c.JSON(http.StatusOK, out)
}

// listFilter reads GET /v1/messages's query.
func listFilter(c echo.Context) (queue.ListFilter, error) {
	limit := 50
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return queue.ListFilter{}, problem(codeInvalidQuery, "limit is 1 to 1000")
		}
		limit = n
	}
	f := queue.ListFilter{TenantID: c.QueryParam("tenant_id"), Status: queue.Status(c.QueryParam("status")),
		To: c.QueryParam("to"), Tag: c.QueryParam("tag"), After: c.QueryParam("after"), Limit: limit}
	if f.TenantID != "" && !tenant.ValidID(f.TenantID) {
		return queue.ListFilter{}, problem(codeInvalidQuery, "tenant_id is not a tenant id")
	}
	if f.Status != "" && !slices.Contains(queue.Statuses(), f.Status) {
		return queue.ListFilter{}, problem(codeInvalidQuery, "status is not a message status")
	}
	if f.After != "" && !queue.ValidID(f.After) {
		return queue.ListFilter{}, problem(codeInvalidQuery, "after is not the next of an earlier page")
	}
	for name, t := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := c.QueryParam(name); v != "" {
			parsed, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return queue.ListFilter{}, problem(codeInvalidQuery, name+" is not an RFC 3339 time")
			}
			*t = parsed
		}
	}
	return f, nil
}

type depthView struct {
	Partition        int     `json:"partition"`
	Depth            int64   `json:"depth"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
}

type bucketView struct {
	Start      time.Time `json:"start"`
	Sent       int64     `json:"sent"`
	Deferred   int64     `json:"deferred"`
	Failed     int64     `json:"failed"`
	Suppressed int64     `json:"suppressed"`
}

type statsView struct {
	TenantID   string       `json:"tenant_id,omitempty"`
	Partitions []depthView  `json:"partitions"`
	Minutes    []bucketView `json:"minutes"`
	Hours      []bucketView `json:"hours"`
}

func bucketViews(bs []queue.Bucket) []bucketView {
	out := make([]bucketView, len(bs))
	for i, b := range bs {
		out[i] = bucketView{Start: b.Start, Sent: b.Counts[queue.StatusSent], Deferred: b.Counts[queue.StatusDeferred],
			Failed: b.Counts[queue.StatusFailed], Suppressed: b.Counts[queue.StatusSuppressed]}
	}
	return out
}

// getStats answers the queue's backlog by partition and the outcomes of
// the last hour by minute and of the last day by hour, of every tenant or
// of ?tenant_id= (the backlog is always the whole queue's).
func (s *Server) getStats(c echo.Context) error {
	tenantID := c.QueryParam("tenant_id")
	if tenantID != "" && !tenant.ValidID(tenantID) {
		return problem(codeInvalidQuery, "tenant_id is not a tenant id")
	}
	ctx := c.Request().Context()
	depths, err := s.Activity.Depths(ctx)
	if err != nil {
		return err
	}
	counts, err := s.Activity.Counts(ctx, tenantID)
	if err != nil {
		return err
	}
	out := statsView{TenantID: tenantID, Partitions: make([]depthView, len(depths)),
		Minutes: bucketViews(counts.Minutes), Hours: bucketViews(counts.Hours)}
	for i, d := range depths {
		out.Partitions[i] = depthView{Partition: d.Partition, Depth: d.Depth, OldestAgeSeconds: d.OldestAge.Seconds()}
	}
	return c.JSON(http.StatusOK, out)
}
