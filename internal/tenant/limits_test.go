package tenant

import (
	"slices"
	"testing"
)

func TestLimitsRaises(t *testing.T) {
	d := Limits{RatePerMinute: 60, RatePerDay: 2000, MaxConnections: 3}
	limited := func(perMinute, perDay, conns int) *Profile {
		p := &Profile{MaxConnections: conns}
		if perMinute > 0 {
			p.RateLimit = &RateLimit{PerMinute: perMinute, PerDay: perDay}
		}
		return p
	}
	cases := []struct {
		name         string
		next, stored *Profile
		want         []string
	}{
		{"new profile at the defaults", limited(0, 0, 0), nil, nil},
		{"new profile at the defaults, spelt out", limited(60, 2000, 3), nil, nil},
		{"new profile above the rate", limited(61, 2000, 0), nil, []string{"rate_limit.per_minute"}},
		{"new profile above the day", limited(60, 2001, 0), nil, []string{"rate_limit.per_day"}},
		{"new profile above the connections", limited(0, 0, 4), nil, []string{"max_connections"}},
		{"lower", limited(30, 1000, 1), limited(0, 0, 0), nil},
		{"keep the operator's raise", limited(500, 9000, 10), limited(500, 9000, 10), nil},
		{"lower the operator's raise", limited(0, 0, 0), limited(500, 9000, 10), nil},
		{"back up to the defaults", limited(0, 0, 0), limited(30, 1000, 1),
			[]string{"rate_limit.per_minute", "rate_limit.per_day", "max_connections"}},
		{"delete a lowered profile", nil, limited(30, 2000, 1), []string{"rate_limit.per_minute"}},
		{"delete a raised profile", nil, limited(500, 9000, 10), nil},
		{"delete, connections only", nil, limited(0, 0, 1), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := d.Raises(tc.next, tc.stored); !slices.Equal(got, tc.want) {
				t.Errorf("Raises = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLimitsInForce(t *testing.T) {
	d := Limits{RatePerMinute: 60, RatePerDay: 2000, MaxConnections: 10}
	cases := []struct {
		name string
		p    *Profile
		want Limits
	}{
		{"no profile", nil, Limits{RatePerMinute: 60, RatePerDay: 2000, MaxConnections: 10}},
		{"no provider", &Profile{}, Limits{RatePerMinute: 60, RatePerDay: 2000, MaxConnections: 10}},
		{"microsoft365", &Profile{Provider: "microsoft365"},
			Limits{RatePerMinute: 60, RatePerDay: 2000, MaxConnections: 3, PacePerMinute: 30}},
		{"gmail", &Profile{Provider: "gmail"},
			Limits{RatePerMinute: 60, RatePerDay: 500, MaxConnections: 10, MaxRecipients: 100}},
		{"google", &Profile{Provider: "google"},
			Limits{RatePerMinute: 60, RatePerDay: 2000, MaxConnections: 10, MaxRecipients: 100}},
		{"a provider without published limits", &Profile{Provider: "fastmail"},
			Limits{RatePerMinute: 60, RatePerDay: 2000, MaxConnections: 10}},
		{"the profile's own win, above and below", &Profile{Provider: "microsoft365", RateLimit: &RateLimit{PerMinute: 5, PerDay: 9000},
			MaxConnections: 6, PacePerMinute: 120},
			Limits{RatePerMinute: 5, RatePerDay: 9000, MaxConnections: 6, PacePerMinute: 120}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := d.InForce(tc.p); got != tc.want {
				t.Errorf("InForce = %+v, want %+v", got, tc.want)
			}
		})
	}
	// A provider's limit above the service's does not raise it.
	small := Limits{RatePerMinute: 10, RatePerDay: 100, MaxConnections: 2}
	if got := small.InForce(&Profile{Provider: "microsoft365"}); got.RatePerDay != 100 || got.MaxConnections != 2 {
		t.Errorf("InForce under smaller service limits = %+v", got)
	}
}

// Provider defaults are not an allowance: leaving them is no raise.
func TestLimitsRaisesIgnoresProviderDefaults(t *testing.T) {
	d := Limits{RatePerMinute: 60, RatePerDay: 2000, MaxConnections: 10}
	gmail, google := &Profile{Provider: "gmail"}, &Profile{Provider: "google"}
	for name, pair := range map[string][2]*Profile{
		"gmail to google":          {google, gmail},
		"delete a gmail profile":   {nil, gmail},
		"own limits above gmail's": {{Provider: "gmail", RateLimit: &RateLimit{PerMinute: 60, PerDay: 2000}}, gmail},
	} {
		if got := d.Raises(pair[0], pair[1]); got != nil {
			t.Errorf("%s: Raises = %v, want none", name, got)
		}
	}
	if got := d.Raises(&Profile{Provider: "microsoft365", MaxConnections: 11}, nil); !slices.Equal(got, []string{"max_connections"}) {
		t.Errorf("above the service's connections: Raises = %v", got)
	}
}
