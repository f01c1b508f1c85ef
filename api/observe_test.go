package api_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// metricValue reads one sample from the Prometheus text output.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func scrape(t *testing.T, h *harness) string {
	t.Helper()
	r := h.do("GET", "/metrics", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("/metrics: %d", r.status)
	}
	return string(r.body)
}

func TestMetricsMoveAndLogsKeepSecrets(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	before := scrape(t, s.harness)

	in := invoice()
	in["text"] = "body text that must never be logged"
	s.waitStatus(t, s.accept(t, in), "sent")
	s.post(t, map[string]any{"tenant_id": "acme"}) // a 422

	after := scrape(t, s.harness)
	for _, series := range []string{
		`outbound_messages_total{event="accepted",route="tenant",tenant=""}`,
		`outbound_messages_total{event="sent",route="tenant",tenant=""}`,
		`outbound_smtp_attempt_duration_seconds_count{result="ok",route="tenant"}`,
		`outbound_http_request_duration_seconds_count{method="POST",route="/v1/messages",status="202"}`,
		`outbound_http_request_duration_seconds_count{method="POST",route="/v1/messages",status="422"}`,
	} {
		if d := metricValue(t, after, series) - metricValue(t, before, series); d != 1 {
			t.Errorf("%s moved by %v, want 1", series, d)
		}
	}
	if !strings.Contains(after, `outbound_queue_depth{partition="0"}`) || !strings.Contains(after, "outbound_queue_oldest_age_seconds") {
		t.Error("queue gauges missing")
	}
	if strings.Contains(after, `tenant="acme"`) {
		t.Error("tenant id in metric labels without the opt-in")
	}

	logs := s.logs.String()
	for _, secret := range []string{tenantPass, s.adminToken, s.sendToken, "body text that must never be logged"} {
		if strings.Contains(logs, secret) || strings.Contains(after, secret) {
			t.Errorf("logs or metrics hold %q", secret)
		}
	}
	for _, want := range []string{`"msg":"request"`, `"msg":"delivery attempt"`, `"message_id":`, `"tenant_id":"acme"`, `"request_id":`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
}
