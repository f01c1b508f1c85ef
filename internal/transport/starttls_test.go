package transport

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/outbound-mail/outbound/internal/tenant"
)

// scriptedServer answers the plain-text opening of a session with fixed
// replies, one per line the client sends, and records those lines.
func scriptedServer(t *testing.T, greeting string, replies ...string) (port int, lines <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 16)
	go func() {
		defer close(got)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Write([]byte(greeting))
		r := bufio.NewReader(conn)
		for _, reply := range replies {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			got <- strings.TrimRight(line, "\r\n")
			conn.Write([]byte(reply))
		}
		// Whatever comes next (a TLS hello, or nothing) ends the script.
		if line, err := r.ReadString('\n'); err == nil || line != "" {
			got <- "more: " + line
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, got
}

func TestSTARTTLSOpeningRefusals(t *testing.T) {
	for _, tc := range []struct {
		name      string
		greeting  string
		replies   []string
		code      string
		stage     Stage
		smtpCode  int
		wantLines []string
	}{
		{"greeting refused", "554 5.7.1 go away\r\n", nil, CodeRejected, StageGreet, 554, nil},
		{"EHLO refused", "220 hi\r\n", []string{"502 5.5.1 no\r\n"}, CodeRejected, StageGreet, 502, []string{"EHLO outbound.test"}},
		{"STARTTLS not offered", "220 hi\r\n", []string{"250-hi\r\n250 AUTH PLAIN\r\n"}, CodeTLSFailed, StageTLS, 0, []string{"EHLO outbound.test"}},
		{"STARTTLS refused", "220 hi\r\n", []string{"250-hi\r\n250 STARTTLS\r\n", "454 4.7.0 TLS not available\r\n"},
			CodeRejected, StageTLS, 454, []string{"EHLO outbound.test", "STARTTLS"}},
		// A reply injected in clear text after "220", to be read as if it
		// came over TLS: the session is refused before the handshake.
		{"data after the STARTTLS reply", "220 hi\r\n", []string{"250-hi\r\n250 STARTTLS\r\n", "220 go ahead\r\n250 injected\r\n"},
			CodeTLSFailed, StageTLS, 0, []string{"EHLO outbound.test", "STARTTLS"}},
		// The same with the start of a line only, which the reply limiter
		// holds back from textproto's buffer until its line ends.
		{"partial line after the STARTTLS reply", "220 hi\r\n", []string{"250-hi\r\n250 STARTTLS\r\n", "220 go ahead\r\n250 inj"},
			CodeTLSFailed, StageTLS, 0, []string{"EHLO outbound.test", "STARTTLS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, lines := scriptedServer(t, tc.greeting, tc.replies...)
			d := &Dialer{AllowPrivate: true, HeloName: "outbound.test", ConnectTimeout: 3e9, CommandTimeout: 3e9, DataTimeout: 3e9}
			_, err := d.Dial(context.Background(), Server{Host: "127.0.0.1", Port: port, Security: tenant.SecurityStartTLS,
				Auth: tenant.AuthPlain, Username: user})
			e := mustTransportError(t, err)
			if e.Code != tc.code || e.Stage != tc.stage || e.SMTPCode != tc.smtpCode {
				t.Errorf("got code %s, stage %s, SMTP %d (%s); want %s, %s, %d", e.Code, e.Stage, e.SMTPCode, e.Message, tc.code, tc.stage, tc.smtpCode)
			}
			var got []string
			for line := range lines {
				got = append(got, line)
			}
			if strings.Join(got, "|") != strings.Join(tc.wantLines, "|") {
				t.Errorf("server read %q, want %q", got, tc.wantLines)
			}
		})
	}
}
