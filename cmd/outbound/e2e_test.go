package main

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// mailpitMessage is what Mailpit's API reports of a stored message.
type mailpitMessage struct {
	From        mailpitAddr
	To, Cc, Bcc []mailpitAddr
	ReplyTo     []mailpitAddr
	Subject     string
	Text        string
	HTML        string
	MessageID   string
	Attachments []struct {
		FileName    string
		ContentType string
		Size        int
		Checksums   struct{ SHA1 string }
	}
}

type mailpitAddr struct{ Name, Address string }

// TestEndToEndThroughMailpit runs the built binary against Redis and two
// Mailpit servers: the tenant's own account (implicit TLS) and the
// platform's default relay (STARTTLS), both with AUTH and a certificate
// from a test CA that the service trusts through OUTBOUND_SMTP_CA_FILE.
func TestEndToEndThroughMailpit(t *testing.T) {
	ca := smtptest.NewCA(t)
	certFile, keyFile, caFile := tlsFiles(t, ca)
	tenantBox := startMailpit(t, "tls", certFile, keyFile, map[string]string{"acme@gmail.test": "abcdefghijklmnop"})
	relayBox := startMailpit(t, "starttls", certFile, keyFile, map[string]string{"relay@platform.test": "relay-p@ss"})

	redis := redistest.Start(t)
	relay := "smtp://" + url.UserPassword("relay@platform.test", "relay-p@ss").String() + "@localhost:" + strconv.Itoa(relayBox.smtpPort)
	env, admin, send := serviceEnv(t, redis.URL(),
		"OUTBOUND_SMTP_CA_FILE="+caFile,
		"OUTBOUND_DEFAULT_RELAY="+relay,
		"OUTBOUND_DEFAULT_FROM=Platform <no-reply@platform.test>")
	svc := startService(t, env, admin, send)

	status, body := svc.call(t, "PUT", "/v1/tenants/acme/smtp", admin, map[string]any{
		"enabled": true, "sender_name": "Acme Trading", "email": "acme@gmail.test",
		"password": "abcd efgh ijkl mnop", "host": "localhost", "port": tenantBox.smtpPort, "security": "tls"})
	if status != http.StatusCreated {
		t.Fatalf("PUT profile: %d %v", status, body)
	}
	// The host is not smtp.gmail.com, so the spaces stay in the password
	// and this server refuses it.
	status, body = svc.call(t, "POST", "/v1/tenants/acme/smtp/verify", admin, nil)
	if verr, _ := body["error"].(map[string]any); status != 200 || body["ok"] != false || verr["code"] != "auth_failed" {
		t.Fatalf("verify with a spaced password on a non-Gmail host: %d %v", status, body)
	}
	svc.call(t, "PUT", "/v1/tenants/acme/smtp", admin, map[string]any{
		"enabled": true, "sender_name": "Acme Trading", "email": "acme@gmail.test",
		"password": "abcdefghijklmnop", "host": "localhost", "port": tenantBox.smtpPort, "security": "tls"})
	if status, body = svc.call(t, "POST", "/v1/tenants/acme/smtp/verify", admin, nil); status != 200 || body["ok"] != true {
		t.Fatalf("verify: %d %v", status, body)
	}

	pdf := []byte("%PDF-1.4\n% invoice 42\n")
	subject := "فاتورة رقم 42"
	status, body = svc.call(t, "POST", "/v1/messages", send, map[string]any{
		"tenant_id": "acme",
		"to":        []map[string]string{{"email": "client@example.com", "name": "Client"}},
		"cc":        []map[string]string{{"email": "accounts@example.com"}},
		"bcc":       []map[string]string{{"email": "archive@example.com"}},
		"reply_to":  []map[string]string{{"email": "support@acme.test"}},
		"subject":   subject, "text": "Your invoice is attached.", "html": "<p>Your invoice is attached.</p>",
		"attachments": []map[string]string{{"filename": "invoice-42.pdf", "content_type": "application/pdf",
			"content": base64.StdEncoding.EncodeToString(pdf)}},
		"headers": map[string]string{"X-Invoice-Id": "42"},
	})
	if status != http.StatusAccepted || body["route"] != "tenant" {
		t.Fatalf("POST tenant message: %d %v", status, body)
	}
	sent := svc.waitStatus(t, body["id"].(string), "sent", 15*time.Second)
	if atts, _ := sent["attempts"].([]any); len(atts) != 1 {
		t.Errorf("attempts = %v", sent["attempts"])
	}

	got := onlyMessage(t, tenantBox)
	if got.From.Address != "acme@gmail.test" || got.From.Name != "Acme Trading" {
		t.Errorf("From = %+v", got.From)
	}
	if got.Subject != subject {
		t.Errorf("Subject = %q, want %q", got.Subject, subject)
	}
	if len(got.ReplyTo) != 1 || got.ReplyTo[0].Address != "support@acme.test" {
		t.Errorf("Reply-To = %+v", got.ReplyTo)
	}
	if len(got.To) != 1 || got.To[0].Address != "client@example.com" || len(got.Cc) != 1 {
		t.Errorf("To/Cc = %+v %+v", got.To, got.Cc)
	}
	sum := sha1.Sum(pdf)
	if len(got.Attachments) != 1 || got.Attachments[0].FileName != "invoice-42.pdf" ||
		got.Attachments[0].Checksums.SHA1 != hex.EncodeToString(sum[:]) {
		t.Errorf("attachments = %+v", got.Attachments)
	}

	// A tenant without a profile goes through the default relay: the
	// platform's address, the tenant's name, replies to the tenant.
	status, body = svc.call(t, "POST", "/v1/messages", send, map[string]any{
		"tenant_id": "beta",
		"from":      map[string]string{"name": "Beta Bookings", "email": "hello@beta.test"},
		"to":        []map[string]string{{"email": "guest@example.com"}},
		"subject":   "Your booking", "text": "See you soon.",
	})
	if status != http.StatusAccepted || body["route"] != "default" {
		t.Fatalf("POST default message: %d %v", status, body)
	}
	svc.waitStatus(t, body["id"].(string), "sent", 15*time.Second)
	got = onlyMessage(t, relayBox)
	if got.From.Address != "no-reply@platform.test" || got.From.Name != "Beta Bookings" {
		t.Errorf("default route From = %+v", got.From)
	}
	if len(got.ReplyTo) != 1 || got.ReplyTo[0].Address != "hello@beta.test" {
		t.Errorf("default route Reply-To = %+v", got.ReplyTo)
	}
	if got.Subject != "Your booking" {
		t.Errorf("default route Subject = %q", got.Subject)
	}
}

func onlyMessage(t *testing.T, m mailpit) mailpitMessage {
	t.Helper()
	var list struct {
		Messages []struct{ ID string }
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.get(t, "/api/v1/messages", &list)
		if len(list.Messages) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(list.Messages) != 1 {
		t.Fatalf("Mailpit holds %d messages, want 1", len(list.Messages))
	}
	var msg mailpitMessage
	m.get(t, "/api/v1/message/"+list.Messages[0].ID, &msg)
	return msg
}
