package transport

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// BenchmarkSendOverLatency sends to a server 10 ms away (a delaying proxy
// on loopback) over one kept session, pipelined and one command at a
// time, and, as many applications send, over a new session and login per
// message (the naive baseline of cmd/outbound-bench): a provider's distance, not CPU, is what bounds a session's
// rate. The proxy answers the TCP handshake itself, so the naive case
// is, if anything, flattered by one round trip.
//
//	go test -run '^$' -bench SendOverLatency ./internal/transport/
func BenchmarkSendOverLatency(b *testing.B) {
	body := []byte("Subject: x\r\n\r\nx\r\n")
	setup := func(b *testing.B, pipelined bool, mode smtptest.Mode, security tenant.Security) (*Dialer, Server) {
		s := smtptest.Start(b, smtptest.Options{Users: map[string]string{user: pass}, Mode: mode})
		d := dialerFor(s)
		d.NoPipelining = !pipelined
		srv := serverFor(s, security, pass)
		srv.Port = delayingProxy(b, s.Addr(), 5*time.Millisecond)
		return d, srv
	}
	for _, mode := range transactionModes {
		b.Run(mode.name, func(b *testing.B) {
			d, srv := setup(b, mode.pipelined, mode.mode, mode.security)
			c, err := d.Dial(context.Background(), srv)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			for b.Loop() {
				if _, err := c.Send(user, []string{"a@example.com"}, body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
	b.Run("new-session-per-message", func(b *testing.B) {
		// One command at a time, as go-smtp's SendMail.
		d, srv := setup(b, false, smtptest.ImplicitTLS, tenant.SecurityTLS)
		start := time.Now()
		for b.Loop() {
			c, err := d.Dial(context.Background(), srv)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Send(user, []string{"a@example.com"}, body); err != nil {
				b.Fatal(err)
			}
			if err := c.Quit(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
}

// delayingProxy forwards loopback TCP to target, holding every chunk for
// oneWay in each direction (chunks keep their order and do not wait for
// each other), and returns its port.
func delayingProxy(tb testing.TB, target string, oneWay time.Duration) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			go delay(out, in, oneWay)
			go delay(in, out, oneWay)
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}

func delay(dst, src net.Conn, oneWay time.Duration) {
	type chunk struct {
		due  time.Time
		data []byte
	}
	chunks := make(chan chunk, 1024)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{time.Now().Add(oneWay), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite() // pass the end on, as the network would
	}
}
