package submission

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Clients no one here wrote: Python's smtplib and curl, as an existing
// application's mailer would talk to Outbound.

const pythonClient = `
import json, smtplib, ssl, sys
mode, host, port, user, token, cafile = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=cafile)
msg = sys.stdin.buffer.read()
out = {}
try:
    if mode == "implicit":
        s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=10)
    else:
        s = smtplib.SMTP(host, int(port), timeout=10)
        if mode != "plaintext":
            s.starttls(context=ctx)
    s.ehlo("python.test")
    out["auth"] = s.esmtp_features.get("auth", "").strip()
    if mode.startswith("login"):
        # LOGIN asked for step by step, or with the user name on AUTH.
        s.user, s.password = user, token
        code, text = s.auth("LOGIN", s.auth_login, initial_response_ok=(mode == "login-ir"))
    else:
        code, text = s.login(user, token)
    out["login"] = [code, text.decode()]
    s.mail("app@acme.example", ["SMTPUTF8"] if b"\xc3" in msg else [])
    s.rcpt("client@example.com")
    code, text = s.data(msg)
    out["data"] = [code, text.decode()]
    s.quit()
except smtplib.SMTPResponseException as e:
    out["error"] = [e.smtp_code, e.smtp_error.decode()]
except smtplib.SMTPNotSupportedError as e:
    out["error"] = [0, str(e)]
json.dump(out, sys.stdout)
`

type pyResult struct {
	Auth  string
	Login []any
	Data  []any
	Error []any
}

func runPython(t *testing.T, f *fixture, mode, user, token string, msg []byte) pyResult {
	t.Helper()
	addr := f.startTLS
	if mode == "implicit" {
		addr = f.implicit
	}
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command("python3", "-c", pythonClient, mode, host, port, user, token, f.caFile)
	cmd.Stdin = bytes.NewReader(msg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 (install python3 if missing): %v\n%s", err, stderr.String())
	}
	var r pyResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("python3 said %q: %v", out, err)
	}
	return r
}

func TestPythonSmtplib(t *testing.T) {
	f := newFixture(t, Config{})
	utf8 := []byte("From: Zoë <zoe@acme.example>\r\nTo: client@example.com\r\nSubject: Grüße\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nÜber \xe2\x9c\x93\r\n.dot line\r\n")
	for _, mode := range []string{"starttls", "implicit", "login", "login-ir"} {
		t.Run(mode, func(t *testing.T) {
			before := len(f.acceptor.messages())
			r := runPython(t, f, mode, "acme", f.acmeToken, utf8)
			if r.Error != nil {
				t.Fatalf("python: %v", r.Error)
			}
			if r.Auth != "PLAIN LOGIN" || r.Login[0] != float64(235) {
				t.Errorf("auth %q login %v", r.Auth, r.Login)
			}
			if r.Data[0] != float64(250) || r.Data[1] != "2.0.0 OK queued as msg-"+string(rune('1'+before)) {
				t.Errorf("data reply %v", r.Data)
			}
			got := f.acceptor.messages()[before]
			if !bytes.Equal(got.Raw, utf8) || got.TenantID != "acme" {
				t.Errorf("raw %q, want %q", got.Raw, utf8)
			}
		})
	}
	t.Run("wrong token", func(t *testing.T) {
		r := runPython(t, f, "starttls", "acme", "obk_wrong", utf8)
		if r.Error == nil || r.Error[0] != float64(535) || !strings.HasPrefix(r.Error[1].(string), "5.7.8 ") {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("bound token for another tenant", func(t *testing.T) {
		r := runPython(t, f, "implicit", "globex", f.acmeToken, utf8)
		if r.Error == nil || r.Error[0] != float64(535) {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("no STARTTLS", func(t *testing.T) {
		// smtplib will not log in where AUTH is not offered: it is not,
		// in clear.
		r := runPython(t, f, "plaintext", "acme", f.acmeToken, utf8)
		if r.Auth != "" || r.Error == nil || r.Error[0] != float64(0) {
			t.Errorf("got %+v", r)
		}
	})
}

func TestCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed: apt-get install curl")
	}
	f := newFixture(t, Config{})
	// curl dot-stuffs the leading dot on the wire; the server removes it.
	msg := "From: billing@acme.example\r\nTo: client@example.com\r\nSubject: curl\r\n\r\nline\r\n.dot\r\n"
	file := filepath.Join(t.TempDir(), "mail.eml")
	if err := os.WriteFile(file, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, url := range []string{"smtp://" + f.startTLS, "smtps://" + f.implicit} {
		cmd := exec.Command("curl", "-sS", "-v", "--ssl-reqd", url, "--cacert", f.caFile,
			"--user", "acme:"+f.acmeToken, "--mail-from", "billing@acme.example",
			"--mail-rcpt", "client@example.com", "--upload-file", file)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", url, err, out)
		}
		if want := "< 250 2.0.0 OK queued as msg-" + string(rune('1'+i)); !strings.Contains(string(out), want) {
			t.Errorf("curl %s: no %q in\n%s", url, want, out)
		}
		if strings.Contains(string(out), "AUTH LOGIN") || !strings.Contains(string(out), "> AUTH PLAIN") {
			t.Errorf("curl did not use PLAIN:\n%s", out)
		}
	}
	for _, m := range f.acceptor.messages() {
		if string(m.Raw) != msg {
			t.Errorf("raw %q", m.Raw)
		}
	}
	cmd := exec.Command("curl", "-sS", "--ssl-reqd", "smtp://"+f.startTLS, "--cacert", f.caFile,
		"--user", "acme:obk_wrong", "--mail-from", "billing@acme.example", "--mail-rcpt", "client@example.com", "--upload-file", file)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Login denied") {
		t.Errorf("curl with a wrong token: %v %s", err, out)
	}
}
