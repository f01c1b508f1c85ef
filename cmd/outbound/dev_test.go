package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/logtest"
)

// TestDevQuickstart runs `outbound dev` the way a newcomer would, runs the
// three curl commands it prints (as the same HTTP requests, from Go), and
// finds the caught message as an .eml file.
func TestDevQuickstart(t *testing.T) {
	dir := t.TempDir()
	lines, stderr := startDev(t, dir)
	var curls []string
	timeout := time.After(20 * time.Second)
	for len(curls) < 3 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev exited early:\n%s", stderr.String())
			}
			if strings.HasPrefix(l, "curl ") {
				curls = append(curls, l)
			}
		case <-timeout:
			t.Fatalf("no curl commands printed in 20s:\n%s", stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), "nothing is persisted") {
		t.Errorf("no warning that nothing is persisted:\n%s", stderr.String())
	}

	status, body := runCurl(t, curls[0], "")
	if status != http.StatusCreated {
		t.Fatalf("printed profile command: %d %s", status, body)
	}
	status, body = runCurl(t, curls[1], "")
	if status != http.StatusAccepted {
		t.Fatalf("printed send command: %d %s", status, body)
	}
	var accepted struct{ ID string }
	json.Unmarshal(body, &accepted)
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body = runCurl(t, curls[2], accepted.ID)
		if status == 200 && strings.Contains(string(body), `"status":"sent"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("printed status command: %d %s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	emls, _ := filepath.Glob(filepath.Join(dir, devMailDir, "*.eml"))
	if len(emls) != 1 {
		t.Fatalf("%d .eml files in %s, want 1", len(emls), devMailDir)
	}
	eml, _ := os.ReadFile(emls[0])
	if !strings.Contains(string(eml), "\r\nSubject: Invoice 42\r\n") || !strings.Contains(string(eml), "billing@acme.example") {
		t.Errorf("caught message:\n%s", eml)
	}

	// The SMTP example: printf writes mail.eml, curl logs in over STARTTLS
	// with the printed certificate and token.
	var printf string
	for {
		l, ok := <-lines
		if !ok {
			t.Fatal("no SMTP submission example printed")
		}
		if strings.HasPrefix(l, "printf ") {
			printf = l
		}
		if strings.HasPrefix(l, "curl --ssl-reqd smtp://") {
			sh := exec.Command("sh", "-c", printf+" && "+l+" -v")
			sh.Dir = t.TempDir()
			out, _ := sh.CombinedOutput()
			if !strings.Contains(string(out), "< 235 ") {
				t.Errorf("printed SMTP example did not log in:\n%s", out)
			}
			break
		}
	}
}

// runCurl performs a printed curl command: -X method, URL, -H headers and
// -d body, with shell single quotes. MESSAGE_ID is replaced by id.
func runCurl(t *testing.T, line, id string) (int, []byte) {
	t.Helper()
	words := shellWords(t, strings.ReplaceAll(line, "MESSAGE_ID", id))
	method, url, body := "GET", "", ""
	header := http.Header{}
	for i := 1; i < len(words); i++ {
		switch words[i] {
		case "-X":
			i++
			method = words[i]
		case "-H":
			i++
			k, v, _ := strings.Cut(words[i], ": ")
			header.Add(k, v)
		case "-d":
			i++
			body = words[i]
		default:
			url = words[i]
		}
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	req.Header = header
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

// shellWords splits a command line the way sh does for unquoted words and
// single-quoted strings, which is all the printed commands use.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case quoted && r == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func TestServeWithoutRedisPointsToDev(t *testing.T) {
	cmd := exec.Command(outboundBinary(t), "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("serve started without OUTBOUND_REDIS_URL")
	}
	if !strings.Contains(string(out), "OUTBOUND_REDIS_URL") || !strings.Contains(string(out), "outbound dev") {
		t.Fatalf("message does not name the variable and point to dev:\n%s", out)
	}
}

// startDev runs `outbound dev` in dir until the test ends: its stdout a
// line at a time (closed when it exits), and its stderr.
func startDev(t *testing.T, dir string) (<-chan string, *logtest.Buffer) {
	t.Helper()
	cmd := exec.Command(outboundBinary(t), "dev")
	cmd.Dir = dir
	// TMPDIR: the killed process leaves its temporary files in the test's directory.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "OUTBOUND_LISTEN=127.0.0.1:0", "TMPDIR=" + t.TempDir()}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &logtest.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines, stderr
}
