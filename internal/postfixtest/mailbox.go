package postfixtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Delivery is one recipient's copy as Postfix stored it.
type Delivery struct {
	// Recipient is the envelope recipient, from the Delivered-To header
	// the virtual agent writes first.
	Recipient string
	// Raw is the stored message: Postfix's trace headers (Return-Path,
	// Delivered-To, Received) and then the message as submitted.
	Raw []byte
	// Path is the Maildir file.
	Path string
}

// Deliveries reads every copy delivered so far, oldest first.
func (s *Server) Deliveries(tb testing.TB) []Delivery {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(s.Dir, "mail", "box", "new", "*"))
	if err != nil {
		tb.Fatalf("postfixtest: %v", err)
	}
	sort.Strings(paths) // Maildir names start with the delivery time
	out := make([]Delivery, 0, len(paths))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			tb.Fatalf("postfixtest: %v", err)
		}
		out = append(out, Delivery{Recipient: deliveredTo(raw), Raw: raw, Path: p})
	}
	return out
}

// WaitDeliveries waits until at least n copies are delivered and returns
// them all.
func (s *Server) WaitDeliveries(tb testing.TB, n int, timeout time.Duration) []Delivery {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.Deliveries(tb)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("postfixtest: %d copies delivered after %v, want %d\nlog:\n%s", len(got), timeout, n, tail(s.Log(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitQueueEmpty waits until Postfix's queue holds no message (none
// received and not yet delivered, none deferred or held), so that the
// mailbox holds every copy it will ever get of what was accepted so far.
func (s *Server) WaitQueueEmpty(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, err := s.queued()
		if err != nil {
			tb.Fatalf("postfixtest: %v", err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("postfixtest: %d messages still in Postfix's queue after %v\nlog:\n%s", n, timeout, tail(s.Log(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queued counts the queue files in the queues a message passes through.
func (s *Server) queued() (int, error) {
	n := 0
	for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold"} {
		err := filepath.WalkDir(filepath.Join(s.Dir, "queue", q), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("queue %s: %w", q, err)
		}
	}
	return n, nil
}

// deliveredTo reads the first Delivered-To header.
func deliveredTo(raw []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Delivered-To") {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// Log is Postfix's log so far (maillog_file).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "maillog"))
	return string(b)
}

// Warnings are the log's lines at warning level or worse (warning:,
// error:, fatal:, panic:).
func (s *Server) Warnings() []string {
	var out []string
	for _, line := range strings.Split(s.Log(), "\n") {
		for _, level := range []string{"warning:", "error:", "fatal:", "panic:"} {
			if strings.Contains(line, "]: "+level) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}
