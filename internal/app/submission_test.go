package app

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/logtest"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// submissionEnv configures both submission listeners on loopback with a
// certificate from ca, and a send key; it returns the key's token.
func submissionEnv(t *testing.T, ca *smtptest.CA) (map[string]string, string) {
	t.Helper()
	certFile, keyFile := smtptest.WriteLeaf(t, t.TempDir(), ca.Leaf(t, smtptest.LeafOptions{}))
	token, key, err := apikey.Generate("app", "send@acme")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"OUTBOUND_API_KEYS":            key.Entry(),
		"OUTBOUND_SUBMISSION_LISTEN":   "127.0.0.1:0",
		"OUTBOUND_SUBMISSIONS_LISTEN":  "127.0.0.1:0",
		"OUTBOUND_SUBMISSION_TLS_CERT": certFile,
		"OUTBOUND_SUBMISSION_TLS_KEY":  keyFile,
	}, token
}

func TestSubmissionDoorServesAndStops(t *testing.T) {
	srv := redistest.Start(t)
	ca := smtptest.NewCA(t)
	env, token := submissionEnv(t, ca)
	logs := &logtest.Buffer{}
	a, err := New(mustConfig(t, srv.URL(), env), slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	startTLS, implicit := a.SubmissionAddrs()
	url, stop := start(t, a)
	if status, body := get(t, url+"/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz: %d %s", status, body)
	}
	tlsCfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	c, err := smtp.DialStartTLS(startTLS.String(), tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "acme", token)); err != nil {
		t.Fatalf("login with a configured key: %v", err)
	}
	// The door hands messages to the delivery service, whose validation
	// answers here: a message without a From is refused for what it lacks.
	err = c.SendMail("app@acme.example", []string{"client@example.com"}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 6, 0}) ||
		!strings.Contains(se.Message, "header.From") {
		t.Errorf("message without From: %v", err)
	}
	ic, err := smtp.DialTLS(implicit.String(), tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Auth(sasl.NewPlainClient("", "globex", token)); err == nil {
		t.Error("a key bound to acme logged in as globex")
	}
	if _, body := get(t, url+"/metrics"); !strings.Contains(body, "\noutbound_submission_sessions_open 2\n") {
		t.Errorf("/metrics: %s", grep(body, "outbound_submission"))
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := c.Noop(); err == nil {
		t.Error("an idle session outlived the shutdown")
	}
	if !strings.Contains(logs.String(), `"msg":"submission session"`) {
		t.Errorf("no session logged:\n%s", logs)
	}
}

func TestSubmissionListenersReleasedByClose(t *testing.T) {
	srv := redistest.Start(t)
	env, _ := submissionEnv(t, smtptest.NewCA(t))
	a, err := New(mustConfig(t, srv.URL(), env), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	startTLS, implicit := a.SubmissionAddrs()
	a.Close()
	for _, addr := range []net.Addr{startTLS, implicit} {
		ln, err := net.Listen("tcp", addr.String())
		if err != nil {
			t.Errorf("%s still held after Close: %v", addr, err)
			continue
		}
		ln.Close()
	}
}
