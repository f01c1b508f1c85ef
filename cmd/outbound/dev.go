package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/alicebob/miniredis/v2"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/app"
	"github.com/outbound-mail/outbound/internal/devmail"
	"github.com/outbound-mail/outbound/internal/loopcert"
	"github.com/outbound-mail/outbound/internal/seal"
)

// devMailDir is where `outbound dev` writes the mail it catches.
const devMailDir = "outbound-dev-mail"

// dev runs the whole service on one machine with nothing else installed:
// an in-process Redis (miniredis) and a mail catcher as the default relay.
// It prints ready tokens and curl commands. Nothing is persisted.
func dev(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	redis, err := miniredis.Run()
	if err != nil {
		return fmt.Errorf("dev: embedded Redis: %w", err)
	}
	defer redis.Close()

	mailDir, err := filepath.Abs(devMailDir)
	if err != nil {
		return err
	}
	catcher, err := devmail.Start("127.0.0.1:0", mailDir)
	if err != nil {
		return err
	}
	defer catcher.Close()
	caFile, err := os.CreateTemp("", "outbound-dev-ca-*.pem")
	if err != nil {
		return err
	}
	defer os.Remove(caFile.Name())
	if _, err := caFile.Write(catcher.CertPEM); err != nil {
		return err
	}
	caFile.Close()

	adminToken, adminKey, err := apikey.Generate("dev-admin", apikey.ScopeAdmin)
	if err != nil {
		return err
	}
	sendToken, sendKey, err := apikey.Generate("dev-send", apikey.ScopeSend)
	if err != nil {
		return err
	}
	certFile, keyFile, err := devSubmissionCert()
	if err != nil {
		return err
	}
	defer os.Remove(certFile)
	defer os.Remove(keyFile)

	smtpPort := strconv.Itoa(catcher.Port())
	overlay := map[string]string{
		"OUTBOUND_REDIS_URL":              "redis://" + redis.Addr() + "/0",
		"OUTBOUND_SECRET_KEY":             seal.NewKey(),
		"OUTBOUND_API_KEYS":               adminKey.Entry() + "," + sendKey.Entry(),
		"OUTBOUND_DEFAULT_RELAY":          "smtps://dev:dev@127.0.0.1:" + smtpPort,
		"OUTBOUND_DEFAULT_FROM":           "Outbound Dev <no-reply@outbound-dev.localhost>",
		"OUTBOUND_SMTP_CA_FILE":           caFile.Name(),
		"OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true", // tenant profiles may point at the catcher
		"OUTBOUND_RETRY_BASE":             "2s",
		"OUTBOUND_SUBMISSION_TLS_CERT":    certFile,
		"OUTBOUND_SUBMISSION_TLS_KEY":     keyFile,
	}
	devenv := func(name string) string {
		if v, ok := overlay[name]; ok {
			return v
		}
		return getenv(name)
	}
	if devenv("OUTBOUND_LISTEN") == "" {
		overlay["OUTBOUND_LISTEN"] = "127.0.0.1:8080"
	}
	if devenv("OUTBOUND_SUBMISSION_LISTEN") == "" {
		// A free port each start, like the tokens: the banner names it.
		overlay["OUTBOUND_SUBMISSION_LISTEN"] = "127.0.0.1:0"
	}

	fmt.Fprintln(stderr, "outbound dev: WARNING: nothing is persisted (in-memory Redis); do not use this for real mail")
	return serve(ctx, devenv, stderr, func(a *app.App, addr, submission net.Addr) {
		base := "http://" + addr.String()
		printDevBanner(stdout, base, adminToken, sendToken, mailDir, smtpPort)
		if submission != nil {
			printSubmissionBanner(stdout, submission.(*net.TCPAddr).Port, sendToken, certFile)
		}
		// The console, signed in as dev-admin without pasting the token:
		// a link good once, for a short while.
		link, err := a.ConsoleSignInLink(ctx, adminKey.Name)
		if err != nil {
			fmt.Fprintln(stderr, "outbound dev: console link:", err)
			return
		}
		fmt.Fprintf(stdout, "Console (signed in, one use): %s%s\n", base, link)
	}, app.WithConsoleSignInLinks())
}

func printDevBanner(w io.Writer, base, adminToken, sendToken, mailDir, smtpPort string) {
	fmt.Fprintf(w, `Outbound dev is running at %[1]s
Mail is not sent anywhere: every message is written to %[4]s/ as an .eml file.

Tokens (fresh each start):
  admin: %[2]s
  send:  %[3]s

1. Give tenant "acme" its own SMTP account (here: the mail catcher, which accepts any password):
curl -X PUT %[1]s/v1/tenants/acme/smtp -H 'Authorization: Bearer %[2]s' -H 'Content-Type: application/json' -d '{"sender_name": "Acme Trading", "email": "billing@acme.example", "password": "any password", "host": "127.0.0.1", "port": %[5]s, "security": "tls"}'

2. Send a message as acme:
curl -X POST %[1]s/v1/messages -H 'Authorization: Bearer %[3]s' -H 'Content-Type: application/json' -d '{"tenant_id": "acme", "to": [{"email": "client@example.com", "name": "Client"}], "subject": "Invoice 42", "text": "Your invoice is attached.", "attachments": [{"filename": "invoice-42.txt", "content_type": "text/plain", "content": "SW52b2ljZSA0MjogMTAwIEVVUgo="}]}'

3. Read its status (use the id the previous command printed):
curl %[1]s/v1/messages/MESSAGE_ID -H 'Authorization: Bearer %[3]s'

`, base, adminToken, sendToken, mailDir, smtpPort)
}

// printSubmissionBanner shows how an existing application's mailer sends
// through Outbound: only its SMTP settings change.
func printSubmissionBanner(w io.Writer, port int, sendToken, certFile string) {
	fmt.Fprintf(w, `4. Or send as acme over SMTP, the way an existing application's mailer would:
   host 127.0.0.1, port %[1]d, STARTTLS, username acme (the tenant id), password the send token above
   (trust its self-signed certificate, %[3]s)
printf 'From: billing@acme.example\r\nTo: client@example.com\r\nSubject: Hello over SMTP\r\n\r\nSent by curl.\r\n' > mail.eml
curl --ssl-reqd smtp://127.0.0.1:%[1]d --cacert %[3]s --user acme:%[2]s --mail-from billing@acme.example --mail-rcpt client@example.com --upload-file mail.eml

`, port, sendToken, certFile)
}

// devSubmissionCert writes a fresh self-signed certificate for 127.0.0.1
// and localhost, and its key, to temporary files.
func devSubmissionCert() (certFile, keyFile string, err error) {
	cert, err := loopcert.New("outbound dev submission")
	if err != nil {
		return "", "", fmt.Errorf("dev: %w", err)
	}
	certFile, keyFile, err = cert.WriteFiles("", "outbound-dev-submission-*.pem")
	if err != nil {
		return "", "", fmt.Errorf("dev: %w", err)
	}
	return certFile, keyFile, nil
}
