package submission

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/delivery"
	"github.com/outbound-mail/outbound/internal/outage"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/validation"
)

// readmeRefusals reads the refusal table under "Send over SMTP" in the
// README: each row's reply codes ("451 4.7.0") and its "when" text.
func readmeRefusals(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Send over SMTP\n")
	if !ok {
		t.Fatal(`README has no "Send over SMTP" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, table, ok := strings.Cut(section, "\n| reply | when |\n| --- | --- |\n")
	if !ok {
		t.Fatal(`"Send over SMTP" has no "| reply | when |" table`)
	}
	codes := regexp.MustCompile("`([0-9]{3} [0-9]\\.[0-9]{1,3}\\.[0-9]{1,3})`")
	rows := map[string]string{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 2 {
			t.Fatalf("README refusal row %q has %d cells, want 2", line, len(cells))
		}
		for _, m := range codes.FindAllStringSubmatch(cells[0], -1) {
			rows[m[1]] += cells[1] + " "
		}
	}
	if len(rows) == 0 {
		t.Fatal("the README's refusal table has no rows")
	}
	return rows
}

func code(r *smtp.SMTPError) string {
	return fmt.Sprintf("%d %d.%d.%d", r.Code, r.EnhancedCode[0], r.EnhancedCode[1], r.EnhancedCode[2])
}

// TestReadmeRefusalTable holds the README's refusal table to this
// package's replies: every case below is answered with a code whose row
// says when, in the words given; every row is a reply this package (or,
// where named, go-smtp) gives; and every rule of refusalRules is met by
// a case, so a new rule needs a README row to pass.
func TestReadmeRefusalTable(t *testing.T) {
	rows := readmeRefusals(t)
	invalid := func(code string) error {
		v := &validation.Error{}
		v.Add("subject", code, "a message")
		return v
	}
	cases := []struct {
		err   error           // through refuse, or
		reply *smtp.SMTPError // a reply of this package's own
		when  string          // words of the README row
	}{
		{err: &ratelimit.DeniedError{}, when: "over its rate"},
		{err: &tenant.PausedError{Reason: "x"}, when: "paused"},
		{err: invalid("too_many_recipients"), when: "too many recipients"},
		{err: invalid("too_large"), when: "message or header section too large"},
		{err: invalid("duplicate_header"), when: "malformed message or header"},
		{err: &delivery.FromMismatchError{Account: "a@b.example"}, when: "From is not the tenant's account address"},
		{err: delivery.ErrNoRoute, when: "no enabled account and no default relay"},
		{err: outage.ErrUnavailable, when: "storage unavailable"},
		{err: queue.ErrIdempotencyKeyReused, when: "Message-ID reused"},
		{err: errors.New("nobody classified this"), when: "any other error"},
		{reply: lineTooLong(4000).reply, when: "a line too long"},
		{reply: headerTooLarge(256 << 10).reply, when: "header section too large"},
		{reply: tooLarge.reply, when: "message or header section too large"},
		{reply: errShuttingDown, when: "shutting down"},
		{reply: errReadFailed, when: "stopped arriving"},
	}
	// Rows of replies go-smtp gives itself, not this package.
	theirs := map[string]string{"421 4.4.2": "idle too long"}

	met := make([]bool, len(refusalRules))
	claimed := map[string]bool{}
	for _, tc := range cases {
		r := tc.reply
		if tc.err != nil {
			for i, rule := range refusalRules {
				if _, ok := rule(tc.err); ok {
					met[i] = true
					break
				}
			}
			r = refuse(tc.err).reply
		}
		c := code(r)
		claimed[c] = true
		when, ok := rows[c]
		if !ok {
			t.Errorf("%q is answered %s, which the README's refusal table does not list", tc.when, c)
		} else if !strings.Contains(when, tc.when) {
			t.Errorf("the README's row for %s says %q; it should say when: %q", c, strings.TrimSpace(when), tc.when)
		}
	}
	for c, words := range theirs {
		claimed[c] = true
		if !strings.Contains(rows[c], words) {
			t.Errorf("the README's row for %s (go-smtp's own reply) should say %q", c, words)
		}
	}
	for c, when := range rows {
		if !claimed[c] {
			t.Errorf("the README's refusal table lists %s (%s), which nothing here answers", c, strings.TrimSpace(when))
		}
	}
	for i, ok := range met {
		if !ok {
			t.Errorf("refusalRules[%d] has no case here: add one, and its row to the README", i)
		}
	}
}
