package systemtest

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

// Anyone can choose a request's method and path, so neither may become a
// label value as sent: each new value would be a new time series.
func TestMetricsLabelsFromClosedSets(t *testing.T) {
	h := newHarness(t, options{})
	for _, method := range []string{"FOOBAR", "BREW", "X-MADE-UP"} {
		for _, path := range []string{"/v1/messages", "/healthz", "/no/such/path-1234"} {
			if r := h.do(method, path, "", nil); r.status < 400 || r.status >= 500 {
				t.Fatalf("%s %s: %d", method, path, r.status)
			}
		}
	}
	h.do("GET", "/no/such/path-5678", "", nil)
	h.do("GET", "/v1/messagesXYZ", "", nil)
	h.do("GET", "/healthz", "", nil)

	body := scrape(t, h)
	for _, made := range []string{"FOOBAR", "BREW", "X-MADE-UP", "path-1234", "path-5678", "messagesXYZ"} {
		if strings.Contains(body, made) {
			t.Errorf("/metrics holds %q, which a caller chose", made)
		}
	}
	for _, series := range []string{
		`outbound_http_request_duration_seconds_count{method="other",route="/v1/messages",status="405"}`,
		`outbound_http_request_duration_seconds_count{method="other",route="unmatched",status="404"}`,
		`outbound_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}`,
		`outbound_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}`,
	} {
		if metricValue(t, body, series) == 0 {
			t.Errorf("no %s", series)
		}
	}
	if t.Failed() {
		t.Log(grepLines(body, "outbound_http_request_duration_seconds_count"))
	}
}

func grepLines(body, prefix string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
