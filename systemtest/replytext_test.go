package systemtest

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/transport"
)

// A server's long reply is stored cut to transport.MaxReplyText bytes
// wherever it is kept: the rejected recipient, the attempt, the message's
// error, the suppression reason and the profile's last_error.
func TestLongRepliesAreStoredClipped(t *testing.T) {
	// Lines under every bound of a reply but well over the stored length;
	// "é" puts a two-byte rune at the cut. The refusal of a recipient is
	// one line, as go-smtp's server gives the enhanced code (which makes
	// it a hard bounce) on the last line only.
	line := strings.Repeat("é", 900)
	lines := strings.TrimSuffix(strings.Repeat(strings.Repeat("é", 350)+"\n", 3), "\n")
	long := func(code int, enhanced smtp.EnhancedCode, text string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: text}
	}
	s := newSendSetup(t, smtptest.Options{Hooks: smtptest.Hooks{
		Rcpt: func(to string) *smtp.SMTPError {
			if strings.HasPrefix(to, "gone") {
				return long(550, smtp.EnhancedCode{5, 1, 1}, line)
			}
			return nil
		},
		Data: func(msg smtptest.Message) *smtp.SMTPError {
			if msg.To[0] == "refused@example.com" {
				return long(554, smtp.EnhancedCode{5, 7, 1}, lines)
			}
			return nil
		},
	}})
	s.putProfile(t, nil)
	clipped := func(what, got string, extra int) {
		t.Helper()
		if len(got) > transport.MaxReplyText+extra || !strings.Contains(got, "…") || !utf8.ValidString(got) {
			t.Errorf("%s: %d bytes stored: %q", what, len(got), got)
		}
	}

	in := invoice()
	in["to"] = []map[string]string{{"email": "gone@example.com"}, {"email": "client@example.com"}}
	delete(in, "bcc")
	done := s.waitStatus(t, s.accept(t, in), "sent")
	rej, _ := done["rejected_recipients"].([]any)
	if len(rej) != 1 {
		t.Fatalf("rejected = %v", done["rejected_recipients"])
	}
	clipped("rejection", rej[0].(map[string]any)["message"].(string), 0)
	entry := s.do("GET", "/v1/tenants/acme/suppressions/gone@example.com", s.adminToken, nil).json(t)
	clipped("suppression reason", entry["reason"].(string), len("550 5.1.1 "))

	in["to"] = []map[string]string{{"email": "refused@example.com"}}
	failed := s.waitStatus(t, s.accept(t, in), "failed")
	a := attempts(failed)
	if len(a) != 1 || a[0]["smtp_code"] != float64(554) {
		t.Fatalf("attempts = %v", a)
	}
	clipped("attempt", a[0]["message"].(string), 0)
	clipped("message error", failed["error"].(string), len("rejected: 554 5.7.1: "))

	s.account.SetHooks(smtptest.Hooks{Auth: func(string) *smtp.SMTPError { return long(535, smtp.EnhancedCode{5, 7, 8}, lines) }})
	s.account.DropConnections()
	s.waitStatus(t, s.accept(t, invoice()), "deferred")
	le, _ := s.do("GET", "/v1/tenants/acme/smtp", s.adminToken, nil).json(t)["last_error"].(map[string]any)
	if le["code"] != "auth_failed" {
		t.Fatalf("last_error = %v", le)
	}
	clipped("last_error", le["message"].(string), 0)
}
