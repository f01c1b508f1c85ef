package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// hostile is an SMTP server on a raw socket that speaks just enough of the
// protocol to reach a step of a session (greeting, EHLO, STARTTLS, AUTH,
// a pipelined transaction), where it answers with what reply writes.
type hostile struct {
	ln      net.Listener
	tls     *tls.Config
	implied bool // implicit TLS; otherwise STARTTLS is offered
	// reply answers a command ("" for the greeting), encrypted telling
	// whether the session is under TLS yet. It returns false to have the
	// server answer as a plain server would.
	reply   func(w io.Writer, cmd string, encrypted bool) bool
	written atomic.Int64 // bytes the server wrote
}

func startHostile(t *testing.T, implicitTLS bool, reply func(w io.Writer, cmd string, encrypted bool) bool) (*hostile, Server, *Dialer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ca := smtptest.NewCA(t)
	h := &hostile{ln: ln, implied: implicitTLS, reply: reply,
		tls: &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, smtptest.LeafOptions{})}}}
	go h.serve()
	sec := tenant.SecurityStartTLS
	if implicitTLS {
		sec = tenant.SecurityTLS
	}
	srv := Server{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Security: sec, Auth: tenant.AuthPlain,
		Username: user, Password: secret.New(pass)}
	d := &Dialer{AllowPrivate: true, RootCAs: ca.Pool(), HeloName: "outbound.test",
		ConnectTimeout: 5 * time.Second, CommandTimeout: 5 * time.Second, DataTimeout: 5 * time.Second}
	return h, srv, d
}

func (h *hostile) serve() {
	for {
		raw, err := h.ln.Accept()
		if err != nil {
			return
		}
		go h.session(raw)
	}
}

// countingWriter counts what reaches the client.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (h *hostile) session(raw net.Conn) {
	defer raw.Close()
	// A flood stops when the client hangs up, or at the latest here.
	_ = raw.SetDeadline(time.Now().Add(20 * time.Second))
	conn, encrypted := raw, false
	if h.implied {
		conn, encrypted = tls.Server(raw, h.tls), true
	}
	w := countingWriter{conn, &h.written}
	if !h.reply(w, "", encrypted) {
		io.WriteString(w, "220 hostile.test ESMTP\r\n")
	}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimRight(line, "\r\n"))
		if h.reply(w, cmd, encrypted) {
			continue
		}
		switch verb, _, _ := strings.Cut(cmd, " "); verb {
		case "EHLO":
			ext := "250-PIPELINING\r\n250-STARTTLS\r\n"
			if encrypted {
				ext = "250-PIPELINING\r\n250-AUTH PLAIN\r\n"
			}
			io.WriteString(w, "250-hostile.test\r\n"+ext+"250 8BITMIME\r\n")
		case "STARTTLS":
			io.WriteString(w, "220 2.0.0 go ahead\r\n")
			conn, encrypted = tls.Server(raw, h.tls), true
			w, r = countingWriter{conn, &h.written}, bufio.NewReader(conn)
		case "AUTH":
			io.WriteString(w, "235 2.7.0 ok\r\n")
		case "DATA":
			io.WriteString(w, "354 go on\r\n")
			for line != ".\r\n" {
				if line, err = r.ReadString('\n'); err != nil {
					return
				}
			}
			if !h.reply(w, ".", encrypted) {
				io.WriteString(w, "250 2.0.0 queued\r\n")
			}
		case "QUIT":
			io.WriteString(w, "221 bye\r\n")
			return
		default:
			io.WriteString(w, "250 2.0.0 ok\r\n")
		}
	}
}

// flood writes head once, then unit until the client hangs up.
func flood(w io.Writer, head, unit string) {
	if _, err := io.WriteString(w, head); err != nil {
		return
	}
	chunk := []byte(strings.Repeat(unit, 32<<10/len(unit)))
	for {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// endlessLine is a reply line that never ends.
func endlessLine(code string) func(io.Writer) {
	return func(w io.Writer) { flood(w, code+" ", "x") }
}

// endlessReply is a reply of short lines that never ends.
func endlessReply(code string) func(io.Writer) {
	return func(w io.Writer) { flood(w, "", code+"-continued\r\n") }
}

// codeSwitch is a reply that never ends to textproto, which takes a line
// with another code for part of the reply: one that counted a reply as
// ended at any "NNN " line would let it through.
func codeSwitch(code string) func(io.Writer) {
	return func(w io.Writer) { flood(w, code+"-first\r\n", "999 other\r\n") }
}

// at answers with bad at one command (a prefix; "" for the greeting) on
// a clear-text or an encrypted connection.
func at(prefix string, encrypted bool, bad func(io.Writer)) func(io.Writer, string, bool) bool {
	return func(w io.Writer, cmd string, enc bool) bool {
		if enc != encrypted || !strings.HasPrefix(cmd, prefix) || prefix == "" && cmd != "" {
			return false
		}
		bad(w)
		return true
	}
}

// A server that floods a reply ends the session at once with
// reply_too_long, whichever reader was reading, having cost the client a
// bounded amount of memory; the server manages to write little more than
// the socket buffers hold.
func TestEndlessRepliesEndTheSession(t *testing.T) {
	for _, tc := range []struct {
		name        string
		implicitTLS bool
		noPipeline  bool
		reply       func(io.Writer, string, bool) bool
		stage       Stage
	}{
		{"starttls greeting line", false, false, at("", false, endlessLine("220")), StageGreet},
		{"starttls greeting lines", false, false, at("", false, endlessReply("220")), StageGreet},
		{"starttls EHLO line", false, false, at("EHLO", false, endlessLine("250")), StageGreet},
		{"starttls EHLO lines", false, false, at("EHLO", false, endlessReply("250")), StageGreet},
		{"starttls EHLO code switch", false, false, at("EHLO", false, codeSwitch("250")), StageGreet},
		{"starttls STARTTLS reply", false, false, at("STARTTLS", false, endlessReply("220")), StageTLS},
		{"starttls EHLO over TLS", false, false, at("EHLO", true, endlessReply("250")), StageGreet},
		{"tls greeting line", true, false, at("", true, endlessLine("220")), StageGreet},
		{"tls greeting lines", true, false, at("", true, endlessReply("220")), StageGreet},
		{"tls EHLO lines", true, false, at("EHLO", true, endlessReply("250")), StageGreet},
		{"tls EHLO code switch", true, false, at("EHLO", true, codeSwitch("250")), StageGreet},
		{"tls AUTH", true, false, at("AUTH", true, endlessReply("535")), StageAuth},
		{"pipelined MAIL", true, false, at("MAIL", true, endlessReply("250")), StageMail},
		{"pipelined RCPT line", true, false, at("RCPT", true, endlessLine("250")), StageRcpt},
		{"starttls pipelined RCPT", false, false, at("RCPT", true, endlessReply("250")), StageRcpt},
		{"one at a time MAIL", true, true, at("MAIL", true, endlessReply("250")), StageMail},
		{"one at a time final dot", true, true, at(".", true, endlessReply("250")), StageData},
		{"pipelined final dot", true, false, at(".", true, endlessLine("250")), StageData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, srv, d := startHostile(t, tc.implicitTLS, tc.reply)
			d.NoPipelining = tc.noPipeline
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			err := dialAndSend(d, srv)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)

			// Allocations of the whole process, the server's included.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Errorf("the session allocated %d KiB", alloc>>10)
			}
			if elapsed > 2*time.Second {
				t.Errorf("took %v to give up", elapsed)
			}
			t.Logf("allocated %d KiB; server wrote %d KiB", (after.TotalAlloc-before.TotalAlloc)>>10, h.written.Load()>>10)
			e := mustTransportError(t, err)
			if e.Code != CodeReplyTooLong || e.Stage != tc.stage || !e.Permanent() || e.Hint == "" {
				t.Fatalf("got %s at %s (%s), want %s at %s, permanent, with a hint", e.Code, e.Stage, e.Message, CodeReplyTooLong, tc.stage)
			}
		})
	}
}

// dialAndSend opens a session and sends a message on it.
func dialAndSend(d *Dialer, srv Server) error {
	c, err := d.Dial(context.Background(), srv)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Send(user, []string{"a@example.com"}, []byte("Subject: x\r\n\r\nhello\r\n"))
	return err
}

// Long replies within the bounds go through every reader: a line of
// maxReplyLine bytes (with its CRLF) and a reply of maxReplyBytes.
func TestLongRepliesWithinBoundsPass(t *testing.T) {
	line := func(code string) string { return code + " " + strings.Repeat("x", maxReplyLine-6) + "\r\n" }
	ehlo := bigReply("250", "250-STARTTLS\r\n250 8BITMIME\r\n")
	mail := bigReply("250", "250 2.1.0 ok\r\n")
	if len(line("220")) != maxReplyLine || len(ehlo) != maxReplyBytes || len(mail) != maxReplyBytes {
		t.Fatalf("test replies of %d, %d and %d bytes", len(line("220")), len(ehlo), len(mail))
	}
	for _, tc := range []struct {
		name        string
		implicitTLS bool
		noPipeline  bool
		at          string
		encrypted   bool
		reply       string
	}{
		{"starttls greeting", false, false, "", false, line("220")},
		{"starttls EHLO", false, false, "EHLO", false, ehlo},
		{"tls greeting", true, false, "", true, line("220")},
		{"pipelined MAIL", true, false, "MAIL", true, mail},
		{"pipelined RCPT", true, false, "RCPT", true, line("250")},
		{"one at a time MAIL", true, true, "MAIL", true, mail},
		{"one at a time RCPT", true, true, "RCPT", true, line("250")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply := at(tc.at, tc.encrypted, func(w io.Writer) { io.WriteString(w, tc.reply) })
			_, srv, d := startHostile(t, tc.implicitTLS, reply)
			d.NoPipelining = tc.noPipeline
			if err := dialAndSend(d, srv); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// bigReply is a reply of maxReplyBytes exactly: lines of filler, then
// tail, whose last line ends the reply.
func bigReply(code, tail string) string {
	var b strings.Builder
	for rest := maxReplyBytes - len(tail); rest > 0; {
		n := 100
		if rest < 200 {
			n = rest
		}
		b.WriteString(code + "-" + strings.Repeat("y", n-6) + "\r\n")
		rest -= n
	}
	return b.String() + tail
}

// A long reply's text is cut where the session hands it on: in the
// result's reply, an error's message and a rejection's.
func TestReplyTextIsClipped(t *testing.T) {
	long := strings.Repeat("éa", 400) + "\r\n" // 1200 bytes, a multibyte rune at the cut
	lines := "-5.1.1 " + long + "550-5.1.1 " + long + "550 5.1.1 " + long
	for _, tc := range []struct {
		name     string
		at       string
		reply    string
		pipeline bool
	}{
		{"final dot", ".", "250-" + long + "250 " + long, false},
		{"pipelined final dot", ".", "250-" + long + "250 " + long, true},
		{"refused RCPT", "RCPT", "550" + lines, false},
		{"pipelined refused RCPT", "RCPT", "550" + lines, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply := at(tc.at, true, func(w io.Writer) { io.WriteString(w, tc.reply) })
			_, srv, d := startHostile(t, true, reply)
			d.NoPipelining = !tc.pipeline
			c, err := d.Dial(context.Background(), srv)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			res, err := c.Send(user, []string{"a@example.com", "b@example.com"}, []byte("Subject: x\r\n\r\nhello\r\n"))
			texts := []string{res.Reply}
			if err != nil {
				texts = []string{mustTransportError(t, err).Message, res.Rejected[0].Message}
			}
			for _, text := range texts {
				if len(text) > MaxReplyText || !strings.HasSuffix(text, "…") || !utf8.ValidString(text) ||
					len(text) < MaxReplyText-4 {
					t.Errorf("stored %d bytes: %q", len(text), text)
				}
			}
		})
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int // length of the result
	}{
		{"", 0},
		{strings.Repeat("a", MaxReplyText), MaxReplyText},
		{strings.Repeat("a", MaxReplyText+1), MaxReplyText},
		// "€" is three bytes: byte 1021, where the text is cut to leave
		// room for "…", is the third of one, so the cut backs up to 1019.
		{"ab" + strings.Repeat("€", MaxReplyText), 1019 + len("…")},
	} {
		got := clip(tc.in)
		if len(got) != tc.want || !utf8.ValidString(got) || len(tc.in) > MaxReplyText && !strings.HasSuffix(got, "…") {
			t.Errorf("clip(%d bytes) = %d bytes %q, want %d", len(tc.in), len(got), got, tc.want)
		}
	}
}

// A password a server echoes is scrubbed before the text is clipped: no
// part of it is left where the clip cuts through it.
func TestEchoedPasswordScrubbedBeforeClip(t *testing.T) {
	filler := strings.Repeat("z", MaxReplyText-len("…")-6) // the cut falls after the password's sixth byte
	reply := at("AUTH", true, func(w io.Writer) { io.WriteString(w, "535 5.7.8 "+filler+pass+" refused\r\n") })
	_, srv, d := startHostile(t, true, reply)
	_, err := d.Dial(context.Background(), srv)
	e := mustTransportError(t, err)
	if e.Code != CodeAuthFailed || len(e.Message) > MaxReplyText {
		t.Fatalf("got %s with %d bytes", e.Code, len(e.Message))
	}
	if strings.Contains(e.Message, pass[:6]) || strings.Contains(e.Error(), pass[:6]) {
		t.Errorf("part of the password left in %q", e.Message[len(e.Message)-20:])
	}
}
