package config

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

func validEnv(t *testing.T) map[string]string {
	t.Helper()
	_, key, err := apikey.Generate("ops", apikey.ScopeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"OUTBOUND_REDIS_URL":  "redis://127.0.0.1:6379/0",
		"OUTBOUND_SECRET_KEY": seal.NewKey(),
		"OUTBOUND_API_KEYS":   key.Entry(),
	}
}

func load(env map[string]string) (Config, error) {
	return Load(func(k string) string { return env[k] })
}

func TestDefaults(t *testing.T) {
	c, err := load(validEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"max recipients", c.MaxRecipients, 100},
		{"max bytes", c.MaxMessageBytes, int64(25 << 20)},
		{"claim after", c.ClaimAfter, 60 * time.Second},
		{"retry base", c.RetryBase, 30 * time.Second},
		{"retry max age", c.RetryMaxAge, 24 * time.Hour},
		{"retention", c.Retention, 168 * time.Hour},
		{"private networks", c.AllowPrivateNetworks, false},
		{"relay", c.DefaultRelay == nil, true},
		{"partitions", c.QueuePartitions, 1},
		{"public url", c.PublicURL, "http://localhost:8080"},
		{"connect return urls", len(c.ConnectReturnURLs), 0},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// The retention counts from a message's final outcome, so a retry window
// longer than it is fine: records live while their messages do.
func TestRetryWindowMayExceedTheRetention(t *testing.T) {
	env := validEnv(t)
	env["OUTBOUND_RETRY_MAX_AGE"], env["OUTBOUND_RETENTION"] = "72h", "24h"
	if c, err := load(env); err != nil || c.RetryMaxAge != 72*time.Hour || c.Retention != 24*time.Hour {
		t.Fatalf("retry window past the retention: %+v %v", c, err)
	}
}

func TestRelay(t *testing.T) {
	env := validEnv(t)
	env["OUTBOUND_DEFAULT_RELAY"] = "smtps://relay%40platform.example:p%40ss%3Aw0rd@mail.platform.example"
	env["OUTBOUND_DEFAULT_FROM"] = "Platform <no-reply@platform.example>"
	c, err := load(env)
	if err != nil {
		t.Fatal(err)
	}
	r := c.DefaultRelay
	if r.Host != "mail.platform.example" || r.Port != 465 || !r.ImplicitTLS ||
		r.Username != "relay@platform.example" || r.Password.Reveal() != "p@ss:w0rd" {
		t.Errorf("relay = %+v (password %q)", r, r.Password.Reveal())
	}
	if c.DefaultFrom.Address != "no-reply@platform.example" || c.DefaultFrom.Name != "Platform" {
		t.Errorf("from = %+v", c.DefaultFrom)
	}

	env["OUTBOUND_DEFAULT_RELAY"] = "smtp://u:p@relay.example"
	c, err = load(env)
	if err != nil || c.DefaultRelay.Port != 587 || c.DefaultRelay.ImplicitTLS {
		t.Errorf("starttls relay = %+v, %v", c.DefaultRelay, err)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"OUTBOUND_REDIS_URL":              "http://x",
		"OUTBOUND_SECRET_KEY":             "c2hvcnQ=",
		"OUTBOUND_SECRET_KEYS_PREVIOUS":   "nope",
		"OUTBOUND_API_KEYS":               "ops:root:00",
		"OUTBOUND_SMTP_CA_FILE":           notPEM,
		"OUTBOUND_ALLOW_PRIVATE_NETWORKS": "maybe",
		"OUTBOUND_DEFAULT_RELAY":          "http://relay.example",
		"OUTBOUND_MAX_RECIPIENTS":         "0",
		"OUTBOUND_RETRY_BASE":             "30",
		"OUTBOUND_IDEMPOTENCY_TTL":        "1h",
		"OUTBOUND_LOG_LEVEL":              "loud",
		"OUTBOUND_PUBLIC_URL":             "https://mail.example/connect",
		"OUTBOUND_CONNECT_RETURN_URLS":    "https://app.example",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			env := validEnv(t)
			env[name] = value
			_, err := load(env)
			if err == nil || !strings.Contains(err.Error(), name+":") {
				t.Fatalf("error %v does not name %s", err, name)
			}
		})
	}
	t.Run("missing required", func(t *testing.T) {
		_, err := load(map[string]string{})
		for _, name := range []string{"OUTBOUND_REDIS_URL", "OUTBOUND_SECRET_KEY", "OUTBOUND_API_KEYS"} {
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("error %v does not name %s", err, name)
			}
		}
		if !strings.Contains(err.Error(), "outbound dev") {
			t.Errorf("missing Redis URL does not point to `outbound dev`: %v", err)
		}
	})
	t.Run("WAIT on a cluster", func(t *testing.T) {
		env := validEnv(t)
		env["OUTBOUND_REDIS_CLUSTER"] = "true"
		env["OUTBOUND_REDIS_WAIT_REPLICAS"] = "1"
		if _, err := load(env); err == nil || !strings.Contains(err.Error(), "OUTBOUND_REDIS_WAIT_REPLICAS") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("relay without from", func(t *testing.T) {
		env := validEnv(t)
		env["OUTBOUND_DEFAULT_RELAY"] = "smtps://u:p@relay.example"
		if _, err := load(env); err == nil || !strings.Contains(err.Error(), "OUTBOUND_DEFAULT_FROM") {
			t.Errorf("error %v does not name OUTBOUND_DEFAULT_FROM", err)
		}
	})
	t.Run("relay password never echoed", func(t *testing.T) {
		env := validEnv(t)
		env["OUTBOUND_DEFAULT_RELAY"] = "ftp://u:hunter2secret@relay.example"
		_, err := load(env)
		if err == nil || strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("error %v", err)
		}
	})
}

func TestConnectURLs(t *testing.T) {
	env := validEnv(t)
	env["OUTBOUND_PUBLIC_URL"] = "https://mail.example/"
	env["OUTBOUND_CONNECT_RETURN_URLS"] = " https://app.example/settings/ , http://127.0.0.1:3000/back"
	c, err := load(env)
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "https://mail.example" {
		t.Errorf("public URL %q", c.PublicURL)
	}
	if want := []string{"https://app.example/settings/", "http://127.0.0.1:3000/back"}; !slices.Equal(c.ConnectReturnURLs, want) {
		t.Errorf("return URLs %q, want %q", c.ConnectReturnURLs, want)
	}
	for _, bad := range []string{"http://app.example/", "https://app.example", "https://u:p@app.example/", "https://app.example/?a=1", "/relative"} {
		env["OUTBOUND_CONNECT_RETURN_URLS"] = bad
		if _, err := load(env); err == nil || !strings.Contains(err.Error(), "OUTBOUND_CONNECT_RETURN_URLS:") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}

func TestVariables(t *testing.T) {
	vars := Variables()
	for _, want := range []string{"OUTBOUND_LISTEN", "OUTBOUND_REDIS_URL", "OUTBOUND_SECRET_KEY", "OUTBOUND_API_KEYS", "OUTBOUND_RATE_PER_DAY"} {
		if !slices.Contains(vars, want) {
			t.Errorf("Variables() lacks %s", want)
		}
	}
	if len(vars) < 30 {
		t.Errorf("only %d variables: %v", len(vars), vars)
	}
}

func TestSubmission(t *testing.T) {
	c, err := load(validEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.Submission.Enabled() || c.Submission.MaxConnections != 100 || c.Submission.CommandTimeout != 5*time.Minute ||
		c.Submission.DataTimeout != 10*time.Minute || c.Submission.MaxTenantConnections != 0 {
		t.Errorf("defaults %+v", c.Submission)
	}

	ca := smtptest.NewCA(t)
	certFile, keyFile := smtptest.WriteLeaf(t, t.TempDir(), ca.Leaf(t, smtptest.LeafOptions{}))

	env := validEnv(t)
	env["OUTBOUND_SUBMISSION_LISTEN"] = ":587"
	env["OUTBOUND_SUBMISSIONS_LISTEN"] = "127.0.0.1:465"
	env["OUTBOUND_SUBMISSION_TLS_CERT"] = certFile
	env["OUTBOUND_SUBMISSION_TLS_KEY"] = keyFile
	env["OUTBOUND_SUBMISSION_MAX_TENANT_CONNECTIONS"] = "7"
	c, err = load(env)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Submission.Enabled() || c.Submission.Listen != ":587" || c.Submission.ListenTLS != "127.0.0.1:465" || c.Submission.CertFile != certFile ||
		c.Submission.MaxTenantConnections != 7 {
		t.Errorf("%+v", c.Submission)
	}

	for _, tc := range []struct {
		name, want string
		change     map[string]string
	}{
		{"no certificate", "OUTBOUND_SUBMISSION_TLS_CERT:", map[string]string{"OUTBOUND_SUBMISSION_TLS_CERT": ""}},
		{"no key", "OUTBOUND_SUBMISSION_TLS_KEY:", map[string]string{"OUTBOUND_SUBMISSION_TLS_KEY": ""}},
		{"key of another", "OUTBOUND_SUBMISSION_TLS_CERT:", map[string]string{"OUTBOUND_SUBMISSION_TLS_KEY": certFile}},
		{"bad address", "OUTBOUND_SUBMISSIONS_LISTEN:", map[string]string{"OUTBOUND_SUBMISSIONS_LISTEN": "465"}},
		{"certificate without listener", "OUTBOUND_SUBMISSION_TLS_CERT:",
			map[string]string{"OUTBOUND_SUBMISSION_LISTEN": "", "OUTBOUND_SUBMISSIONS_LISTEN": ""}},
		{"connections", "OUTBOUND_SUBMISSION_MAX_CONNECTIONS:", map[string]string{"OUTBOUND_SUBMISSION_MAX_CONNECTIONS": "0"}},
		{"tenant connections", "OUTBOUND_SUBMISSION_MAX_TENANT_CONNECTIONS:", map[string]string{"OUTBOUND_SUBMISSION_MAX_TENANT_CONNECTIONS": "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := maps.Clone(env)
			maps.Copy(e, tc.change)
			if _, err := load(e); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v does not name %s", err, tc.want)
			}
		})
	}
}

func TestSignInApps(t *testing.T) {
	env := validEnv(t)
	c, err := load(env)
	if err != nil || c.GoogleApp.Enabled() || c.MicrosoftApp.Enabled() {
		t.Fatalf("no apps by default: %+v %+v %v", c.GoogleApp, c.MicrosoftApp, err)
	}
	env["OUTBOUND_GOOGLE_CLIENT_ID"] = "123.apps.googleusercontent.com"
	env["OUTBOUND_GOOGLE_CLIENT_SECRET"] = "GOCSPX-topsecret"
	env["OUTBOUND_MICROSOFT_CLIENT_ID"] = "0b1c-app"
	env["OUTBOUND_MICROSOFT_CLIENT_SECRET"] = "ms~topsecret"
	if c, err = load(env); err != nil {
		t.Fatal(err)
	}
	if c.GoogleApp.ClientID != "123.apps.googleusercontent.com" || c.GoogleApp.ClientSecret.Reveal() != "GOCSPX-topsecret" ||
		c.MicrosoftApp.Directory != "common" {
		t.Errorf("apps %+v %+v", c.GoogleApp, c.MicrosoftApp)
	}
	for name, bad := range map[string]map[string]string{
		"OUTBOUND_GOOGLE_CLIENT_SECRET":    {"OUTBOUND_GOOGLE_CLIENT_ID": ""},
		"OUTBOUND_MICROSOFT_CLIENT_SECRET": {"OUTBOUND_MICROSOFT_CLIENT_SECRET": ""},
		"OUTBOUND_MICROSOFT_TENANT":        {"OUTBOUND_MICROSOFT_TENANT": "../evil"},
		"OUTBOUND_GOOGLE_CLIENT_ID":        {"OUTBOUND_GOOGLE_CLIENT_ID": "has space"},
	} {
		e := maps.Clone(env)
		maps.Copy(e, bad)
		_, err := load(e)
		if err == nil || !strings.Contains(err.Error(), name+":") || strings.Contains(err.Error(), "topsecret") {
			t.Errorf("%v: error %v", bad, err)
		}
	}
	e := maps.Clone(env)
	e["OUTBOUND_MICROSOFT_CLIENT_ID"], e["OUTBOUND_MICROSOFT_CLIENT_SECRET"], e["OUTBOUND_MICROSOFT_TENANT"] = "", "", "contoso.example"
	if _, err := load(e); err == nil || !strings.Contains(err.Error(), "OUTBOUND_MICROSOFT_TENANT:") {
		t.Errorf("tenant without app: %v", err)
	}
}
