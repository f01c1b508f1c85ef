// Package metrics is Outbound's Prometheus instrumentation. Tenant ids are
// label values only when the operator opts in (OUTBOUND_METRICS_TENANT_LABELS),
// because a SaaS may have many thousands of tenants and each label value is
// a time series.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the service's collectors. A nil *Metrics records nothing,
// so code under test can run without it.
type Metrics struct {
	registry     *prometheus.Registry
	tenantLabels bool

	messages    *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
	attempts    *prometheus.HistogramVec
	ambiguous   *prometheus.CounterVec
	http        *prometheus.HistogramVec
	dropped     prometheus.Counter

	submissionConns    *prometheus.CounterVec
	submissionLogins   *prometheus.CounterVec
	submissionMessages *prometheus.CounterVec
}

// New makes the collectors and a registry holding them and the Go runtime's.
func New(tenantLabels bool) *Metrics {
	m := &Metrics{
		registry:     prometheus.NewRegistry(),
		tenantLabels: tenantLabels,
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbound_messages_total",
			Help: "Messages by event: accepted (queued by the API), sent, deferred (an attempt failed temporarily), failed.",
		}, []string{"event", "route", "tenant"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbound_rate_limited_total",
			Help: "POST /v1/messages refused with 429 because the tenant was over its rate.",
		}, []string{"tenant"}),
		attempts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outbound_smtp_attempt_duration_seconds",
			Help:    "Duration of each delivery attempt (session from the pool, transaction), by route and result.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "result"}),
		ambiguous: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbound_ambiguous_retries_total",
			Help: "Attempts whose connection was lost after the final dot: retried, and the one source of duplicates.",
		}, []string{"route"}),
		http: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outbound_http_request_duration_seconds",
			Help:    "HTTP requests by route pattern, method and status.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "status"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outbound_events_dropped_total",
			Help: "Message events dropped before webhooks were told of them: the event stream was over its cap because no dispatcher kept up.",
		}),
		submissionConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbound_submission_connections_total",
			Help: "SMTP submission connections by listener (submission: STARTTLS, submissions: implicit TLS) and result (accepted, over_capacity).",
		}, []string{"listener", "result"}),
		submissionLogins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbound_submission_logins_total",
			Help: "SMTP submission AUTH attempts by result: ok, unknown_token, not_allowed (a valid token without send scope or for another tenant), invalid_username, tenant_busy (a good login while the tenant had all the connections it may).",
		}, []string{"result"}),
		submissionMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbound_submission_messages_total",
			Help: "Messages submitted over SMTP by result: accepted, replayed, or the refusal (rate_limited, paused, too_large, ...).",
		}, []string{"result", "tenant"}),
	}
	m.registry.MustRegister(m.messages, m.rateLimited, m.attempts, m.ambiguous, m.http, m.dropped,
		m.submissionConns, m.submissionLogins, m.submissionMessages,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) tenant(id string) string {
	if m.tenantLabels {
		return id
	}
	return ""
}

// Message counts a message event: "accepted", "sent", "deferred", "failed".
func (m *Metrics) Message(event, route, tenantID string) {
	if m != nil {
		m.messages.WithLabelValues(event, route, m.tenant(tenantID)).Inc()
	}
}

// RateLimited counts a refusal for rate.
func (m *Metrics) RateLimited(tenantID string) {
	if m != nil {
		m.rateLimited.WithLabelValues(m.tenant(tenantID)).Inc()
	}
}

// Attempt records one delivery attempt.
func (m *Metrics) Attempt(route string, ok, ambiguous bool, d time.Duration) {
	if m == nil {
		return
	}
	result := "ok"
	if !ok {
		result = "error"
	}
	m.attempts.WithLabelValues(route, result).Observe(d.Seconds())
	if ambiguous {
		m.ambiguous.WithLabelValues(route).Inc()
	}
}

// EventsDropped counts n events dropped from a partition's event stream
// before they were delivered to webhooks.
func (m *Metrics) EventsDropped(n int64) {
	if m != nil {
		m.dropped.Add(float64(n))
	}
}

// HTTPRequest records one answered request. route must come from a closed
// set the caller owns (the route pattern, /v1/messages/:id, or one fixed
// value for requests no route matched), never the raw path. Method and
// status are clamped here to closed sets, since anyone can send any method:
// every distinct label value is a time series kept until the process ends.
func (m *Metrics) HTTPRequest(route, method string, status int, d time.Duration) {
	if m != nil {
		m.http.WithLabelValues(route, methodLabel(method), statusLabel(status)).Observe(d.Seconds())
	}
}

// methodLabel is method when it is one of RFC 9110's (section 9) or PATCH
// (RFC 5789), and "other" for anything else.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "other"
}

// statusLabel is the three-digit code, or "other" outside 100-599: the
// service writes the status itself, so this only guards the set's bound.
func statusLabel(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status)
}

// SubmissionConnection counts one connection to a submission listener.
// Both values come from closed sets the submission package owns.
func (m *Metrics) SubmissionConnection(listener, result string) {
	if m != nil {
		m.submissionConns.WithLabelValues(listener, result).Inc()
	}
}

// SubmissionLogin counts one AUTH attempt by result, never by client
// address or user name: those go to the logs, which do not become series.
func (m *Metrics) SubmissionLogin(result string) {
	if m != nil {
		m.submissionLogins.WithLabelValues(result).Inc()
	}
}

// SubmissionMessage counts one message submitted over SMTP by result.
func (m *Metrics) SubmissionMessage(result, tenantID string) {
	if m != nil {
		m.submissionMessages.WithLabelValues(result, m.tenant(tenantID)).Inc()
	}
}

// Gauge registers a value read at each scrape (open SMTP sessions, say).
func (m *Metrics) Gauge(name, help string, read func() float64) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, read))
}

// QueueReader is what the queue gauges read at scrape time.
type QueueReader interface {
	Partitions() int
	Depth(ctx context.Context, partition int) (int64, error)
	OldestAge(ctx context.Context, partition int) (time.Duration, error)
	RecordsMissing() uint64
}

// WatchQueue registers queue depth and the age of the oldest waiting
// message, read from Redis at each scrape (bounded, so a Redis outage
// cannot hang a scrape).
func (m *Metrics) WatchQueue(q QueueReader, log *slog.Logger) {
	m.registry.MustRegister(&queueCollector{q: q, log: log,
		depth: prometheus.NewDesc("outbound_queue_depth", "Messages waiting for delivery or a retry, by partition.",
			[]string{"partition"}, nil),
		oldest: prometheus.NewDesc("outbound_queue_oldest_age_seconds", "Age of the oldest message waiting in the stream, by partition.",
			[]string{"partition"}, nil),
		missing: prometheus.NewDesc("outbound_records_missing_total",
			"Messages whose record was gone when their delivery began, failed as record_missing by this process.", nil, nil),
	})
}

type queueCollector struct {
	q                      QueueReader
	log                    *slog.Logger
	depth, oldest, missing *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.oldest
	ch <- c.missing
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.missing, prometheus.CounterValue, float64(c.q.RecordsMissing()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for p := range c.q.Partitions() {
		label := strconv.Itoa(p)
		depth, err := c.q.Depth(ctx, p)
		if err != nil {
			c.log.Warn("metrics: queue depth", "partition", p, "error", err)
			return
		}
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(depth), label)
		age, err := c.q.OldestAge(ctx, p)
		if err != nil {
			c.log.Warn("metrics: oldest message", "partition", p, "error", err)
			return
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age.Seconds(), label)
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
