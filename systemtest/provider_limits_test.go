package systemtest

import (
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// effectiveLimits is the profile's effective_limits as the API shows them.
func effectiveLimits(t *testing.T, r response) map[string]any {
	t.Helper()
	if r.status != http.StatusOK && r.status != http.StatusCreated {
		t.Fatalf("profile: %d %s", r.status, r.body)
	}
	l, ok := r.json(t)["effective_limits"].(map[string]any)
	if !ok {
		t.Fatalf("no effective_limits in %s", r.body)
	}
	return l
}

// A profile naming a provider shows that provider's limits where it sets
// none and they are below the service's (the harness allows 1000 a
// minute, 100000 a day, 3 sessions); its own limits replace them.
func TestProfileShowsProviderLimits(t *testing.T) {
	h := newHarness(t, options{})
	path := "/v1/tenants/acme/smtp"
	put := func(t *testing.T, extra map[string]any) map[string]any {
		in := map[string]any{"email": "acme@contoso.example", "password": "pw"}
		for k, v := range extra {
			in[k] = v
		}
		return effectiveLimits(t, h.do("PUT", path, h.adminToken, in))
	}
	cases := []struct {
		name string
		in   map[string]any
		want map[string]any
	}{
		{"no provider", map[string]any{"host": "smtp.example.com", "port": 587},
			map[string]any{"per_minute": 1000.0, "per_day": 100000.0, "max_connections": 3.0, "pace_per_minute": 0.0}},
		{"microsoft365", map[string]any{"provider": "microsoft365"},
			map[string]any{"per_minute": 1000.0, "per_day": 10000.0, "max_connections": 3.0, "pace_per_minute": 30.0}},
		{"google", map[string]any{"provider": "google"},
			map[string]any{"per_minute": 1000.0, "per_day": 2000.0, "max_connections": 3.0, "pace_per_minute": 0.0, "max_recipients": 100.0}},
		{"google with its own limits", map[string]any{"provider": "google", "rate_limit": map[string]int{"per_minute": 10, "per_day": 5000},
			"max_connections": 1, "pace_per_minute": 12},
			map[string]any{"per_minute": 10.0, "per_day": 5000.0, "max_connections": 1.0, "pace_per_minute": 12.0, "max_recipients": 100.0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := put(t, tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("effective_limits %v, want %v", got, tc.want)
			}
			if got := effectiveLimits(t, h.do("GET", path, h.adminToken, nil)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("GET effective_limits %v, want %v", got, tc.want)
			}
		})
	}
}

// A tenant's own admin may set limits above its provider's defaults, up to
// the service's, and delete a profile whose provider had lowered them; the
// service's limits stay the operator's to raise.
func TestTenantAdminAndProviderDefaults(t *testing.T) {
	h := newHarness(t, options{})
	path := "/v1/tenants/acme/smtp"
	in := map[string]any{"provider": "gmail", "email": "acme@gmail.com", "password": "abcd efgh ijkl mnop"}
	if r := h.do("PUT", path, h.acmeAdmin, in); r.status != http.StatusCreated {
		t.Fatalf("PUT gmail profile: %d %s", r.status, r.body)
	}
	in["rate_limit"] = map[string]int{"per_minute": 1000, "per_day": 100000}
	if l := effectiveLimits(t, h.do("PUT", path, h.acmeAdmin, in)); l["per_day"] != 100000.0 {
		t.Errorf("own rate above gmail's 500 a day: effective_limits %v", l)
	}
	in["max_connections"] = 4
	if r := h.do("PUT", path, h.acmeAdmin, in); r.status != http.StatusForbidden || r.code(t) != "operator_only" {
		t.Errorf("max_connections above the service's: %d %s, want 403 operator_only", r.status, r.body)
	}
	delete(in, "rate_limit")
	delete(in, "max_connections")
	h.do("PUT", path, h.acmeAdmin, in)
	if r := h.do("DELETE", path, h.acmeAdmin, nil); r.status != http.StatusNoContent {
		t.Errorf("delete a gmail profile at its provider's defaults: %d %s", r.status, r.body)
	}
}

// Mail from a microsoft365 profile leaves at 30 a minute: the second
// message about 2 s after the first. (Google's 100 recipients a message
// is tested in delivery: this harness allows no more than 100 anyway.)
func TestMicrosoft365PaceThroughTheAPI(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{Data: func(smtptest.Message) *smtp.SMTPError {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		return nil
	}}})
	s.putProfile(t, map[string]any{"provider": "microsoft365"})
	for range 2 {
		msg := invoice()
		delete(msg, "bcc")
		s.accept(t, msg)
	}
	s.account.WaitMessages(t, 2, 10*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if gap := at[1].Sub(at[0]); gap < 1800*time.Millisecond {
		t.Errorf("second message %v after the first, want about 2s (30 a minute)", gap)
	}
}
