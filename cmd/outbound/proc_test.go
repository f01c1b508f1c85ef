package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/logtest"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// The binaries under test, built once per test run.
var (
	binOnce    sync.Once
	binPath    string
	binErr     error
	binTempDir string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binTempDir != "" {
		os.RemoveAll(binTempDir)
	}
	os.Exit(code)
}

// outboundBinary builds this command.
func outboundBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binTempDir, binErr = os.MkdirTemp("", "outbound-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binTempDir, "outbound")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// mailpitVersion is the Mailpit the end-to-end tests run, built from the
// Go module proxy into the user cache on first use (about a minute).
const mailpitVersion = "v1.33.1"

var (
	mailpitOnce sync.Once
	mailpitPath string
	mailpitErr  error
)

func mailpitBinary(t *testing.T) string {
	t.Helper()
	mailpitOnce.Do(func() {
		if p := os.Getenv("OUTBOUND_TEST_MAILPIT"); p != "" {
			mailpitPath = p
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "outbound-test", "mailpit-"+mailpitVersion)
		mailpitPath = filepath.Join(dir, "mailpit")
		if _, err := os.Stat(mailpitPath); err == nil {
			return
		}
		cmd := exec.Command("go", "install", "github.com/axllent/mailpit@"+mailpitVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
		cmd.Dir = os.TempDir() // outside this module
		if out, err := cmd.CombinedOutput(); err != nil {
			mailpitErr = fmt.Errorf("building Mailpit %s (needs the Go module proxy): %v\n%s", mailpitVersion, err, out)
		}
	})
	if mailpitErr != nil {
		t.Fatal(mailpitErr)
	}
	return mailpitPath
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// process is a child process whose output is kept for failure reports.
type process struct {
	cmd  *exec.Cmd
	out  *logtest.Buffer
	done chan struct{}
}

func startProcess(t *testing.T, name string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(name, args...), out: &logtest.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM, 10*time.Second)
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(name), tail(p.out.String(), 6000))
		}
	})
	return p
}

func (p *process) stop(sig syscall.Signal, wait time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(wait):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, url string, p *process) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("process exited while starting:\n%s", tail(p.out.String(), 4000))
		default:
		}
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 20s:\n%s", url, tail(p.out.String(), 4000))
}

// tlsFiles writes a certificate for 127.0.0.1/localhost issued by ca, its
// key, and the CA bundle, and returns their paths.
func tlsFiles(t *testing.T, ca *smtptest.CA) (certFile, keyFile, caFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = smtptest.WriteLeaf(t, dir, ca.Leaf(t, smtptest.LeafOptions{}))
	caFile = filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(caFile, ca.PEM(), 0o600))
	return certFile, keyFile, caFile
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// mailpit is a running Mailpit with its SMTP and HTTP ports.
type mailpit struct {
	smtpPort int
	api      string
}

// startMailpit runs Mailpit in one TLS mode ("tls" implicit, "starttls")
// with AUTH from users. It is told not to reach the network for anything.
func startMailpit(t *testing.T, mode, certFile, keyFile string, users map[string]string) mailpit {
	t.Helper()
	dir := t.TempDir()
	var auth strings.Builder
	for u, p := range users {
		fmt.Fprintf(&auth, "%s:%s\n", u, p)
	}
	authFile := filepath.Join(dir, "auth")
	must(t, os.WriteFile(authFile, []byte(auth.String()), 0o600))
	m := mailpit{smtpPort: freePort(t)}
	httpPort := freePort(t)
	m.api = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	args := []string{"--smtp", "127.0.0.1:" + strconv.Itoa(m.smtpPort), "--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--database", filepath.Join(dir, "mailpit.db"), "--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile,
		"--smtp-auth-file", authFile, "--disable-version-check", "--smtp-disable-rdns", "--quiet"}
	if mode == "tls" {
		args = append(args, "--smtp-require-tls")
	} else {
		args = append(args, "--smtp-require-starttls")
	}
	p := startProcess(t, mailpitBinary(t), os.Environ(), args...)
	waitHTTP(t, m.api+"/api/v1/messages", p)
	return m
}

func (m mailpit) get(t *testing.T, path string, into any) {
	t.Helper()
	res, err := http.Get(m.api + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("mailpit %s: %d %s", path, res.StatusCode, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("mailpit %s: %v: %s", path, err, body)
	}
}

// service is a running `outbound serve`.
type service struct {
	*process
	url        string
	adminToken string
	sendToken  string
	env        []string
}

// serviceEnv is the environment of a test service; extra entries override.
func serviceEnv(t *testing.T, redisURL string, extra ...string) (env []string, adminToken, sendToken string) {
	t.Helper()
	adminToken, adminKey, _ := apikey.Generate("ops", apikey.ScopeAdmin)
	sendToken, sendKey, _ := apikey.Generate("billing", apikey.ScopeSend)
	env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"OUTBOUND_REDIS_URL=" + redisURL,
		"OUTBOUND_SECRET_KEY=" + seal.NewKey(),
		"OUTBOUND_API_KEYS=" + adminKey.Entry() + "," + sendKey.Entry(),
		"OUTBOUND_ALLOW_PRIVATE_NETWORKS=true",
		"OUTBOUND_RETRY_BASE=200ms",
		"OUTBOUND_CLAIM_AFTER=2s",
		"OUTBOUND_SHUTDOWN_GRACE=5s",
		"OUTBOUND_HELO_NAME=outbound.test",
	}
	return append(env, extra...), adminToken, sendToken
}

// submissionEnv is serviceEnv with the STARTTLS submission listener on a
// free port, serving certFile and keyFile, and the service trusting
// caFile's servers; it returns the listener's port too.
func submissionEnv(t *testing.T, redisURL, certFile, keyFile, caFile string) (env []string, adminToken, sendToken string, port int) {
	t.Helper()
	port = freePort(t)
	env, adminToken, sendToken = serviceEnv(t, redisURL,
		"OUTBOUND_SMTP_CA_FILE="+caFile,
		"OUTBOUND_SUBMISSION_LISTEN=127.0.0.1:"+strconv.Itoa(port),
		"OUTBOUND_SUBMISSION_TLS_CERT="+certFile,
		"OUTBOUND_SUBMISSION_TLS_KEY="+keyFile)
	return env, adminToken, sendToken, port
}

func startService(t *testing.T, env []string, adminToken, sendToken string) *service {
	t.Helper()
	port := freePort(t)
	env = append(env, "OUTBOUND_LISTEN=127.0.0.1:"+strconv.Itoa(port))
	s := &service{url: "http://127.0.0.1:" + strconv.Itoa(port), adminToken: adminToken, sendToken: sendToken, env: env}
	s.process = startProcess(t, outboundBinary(t), env, "serve")
	waitHTTP(t, s.url+"/readyz", s.process)
	return s
}

// call sends a JSON request and decodes the JSON answer.
func (s *service) call(t *testing.T, method, path, token string, body any, headers ...string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, path, raw)
		}
	}
	return res.StatusCode, out
}

// waitStatus polls a message until it reaches want.
func (s *service) waitStatus(t *testing.T, id, want string, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	var last map[string]any
	for time.Now().Before(deadline) {
		_, last = s.call(t, "GET", "/v1/messages/"+id, s.sendToken, nil)
		if last["status"] == want {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("message %s is %v after %v, want %s: %v", id, last["status"], within, want, last)
	return nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// stallingRelay is an in-process relay (implicit TLS, AUTH PLAIN as
// relay/relay-pass) whose DATA replies wait stall, and the variables that
// make a service use it as its default relay.
func stallingRelay(t *testing.T, stall time.Duration) (*smtptest.Server, []string) {
	t.Helper()
	relay := smtptest.Start(t, smtptest.Options{Users: map[string]string{"relay": "relay-pass"},
		Hooks: smtptest.Hooks{Stall: func(stage string) time.Duration {
			if stage == smtptest.StageData {
				return stall
			}
			return 0
		}}})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	must(t, os.WriteFile(caFile, relay.CA.PEM(), 0o600))
	return relay, []string{
		"OUTBOUND_SMTP_CA_FILE=" + caFile,
		"OUTBOUND_DEFAULT_RELAY=smtps://relay:relay-pass@127.0.0.1:" + strconv.Itoa(relay.Port()),
		"OUTBOUND_DEFAULT_FROM=Platform <no-reply@platform.test>",
	}
}
