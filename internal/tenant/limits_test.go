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
