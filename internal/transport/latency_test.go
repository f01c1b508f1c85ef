package transport

import (
	"context"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/netdelay"
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
		proxy, err := netdelay.Start(s.Addr(), 5*time.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { proxy.Close() })
		srv.Port = proxy.Port()
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
