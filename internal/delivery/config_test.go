package delivery

import (
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/ratelimit"
)

// New refuses a Config with any duration or rate left unset, and names
// it: the defaults are config's alone, and a zero would reclaim at once
// or retry without a pause.
func TestNewRefusesUnsetSettings(t *testing.T) {
	full := Config{ClaimAfter: time.Minute, RetryBase: time.Second, RetryMaxAge: time.Hour, QuotaHold: time.Hour,
		MessageTimeout: time.Minute, RateLimit: ratelimit.Limit{PerMinute: 60, PerDay: 2000}}
	if err := full.check(); err != nil {
		t.Fatalf("a full config: %v", err)
	}
	for name, unset := range map[string]func(*Config){
		"workers":         func(c *Config) { c.Workers = -1 },
		"claim after":     func(c *Config) { c.ClaimAfter = 0 },
		"retry base":      func(c *Config) { c.RetryBase = 0 },
		"retry max age":   func(c *Config) { c.RetryMaxAge = -time.Second },
		"quota hold":      func(c *Config) { c.QuotaHold = 0 },
		"message timeout": func(c *Config) { c.MessageTimeout = 0 },
		"rate limit":      func(c *Config) { c.RateLimit.PerDay = 0 },
	} {
		c := full
		unset(&c)
		if err := c.check(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s unset: %v, want an error naming it", name, err)
		}
	}
	if _, err := New(Config{}, Deps{}); err == nil || !strings.Contains(err.Error(), "delivery: claim after") {
		t.Errorf("New with nothing set: %v, want check's refusal", err)
	}
}
