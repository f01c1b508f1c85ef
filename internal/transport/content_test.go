package transport

import (
	"bytes"
	"context"
	"testing"

	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// A message with an 8-bit body goes, as it is, with BODY=8BITMIME; one
// with a UTF-8 header with SMTPUTF8; whether pipelined, chunked (one
// recipient) or not.
func TestEightBitAndUTF8GoAsTheyAre(t *testing.T) {
	msg := []byte("From: a@acme.example\r\nSubject: Grüße\r\n\r\nCafé, 8-bit: \xc3\xa9\xff\r\n.\r\nend\r\n")
	eachTransactionMode(t, func(t *testing.T, c *Conn, s *smtptest.Server, _ bool) {
		for i, rcpts := range [][]string{{"b@example.com"}, {"b@example.com", "c@example.com"}} {
			if _, err := c.SendContent("a@acme.example", rcpts, msg, Content{EightBit: true, UTF8: true}); err != nil {
				t.Fatal(err)
			}
			got := s.WaitMessages(t, i+1, 5e9)[i]
			if !bytes.Equal(got.Data, msg) || got.Body != "8BITMIME" || !got.UTF8 {
				t.Errorf("%d recipients: body %s, utf8 %v, data %q", len(rcpts), got.Body, got.UTF8, got.Data)
			}
		}
	})
}

// A server that lacks what a message needs gets nothing of it: a
// permanent protocol_error that names the extension, before MAIL; the
// next message that needs nothing goes.
func TestServerLackingAnExtensionGetsNothing(t *testing.T) {
	for _, tc := range []struct {
		without string
		ct      Content
	}{{"8BITMIME", Content{EightBit: true}}, {"SMTPUTF8", Content{UTF8: true}}} {
		for _, pipelined := range []bool{true, false} {
			t.Run(tc.without, func(t *testing.T) {
				s := smtptest.Start(t, smtptest.Options{Users: map[string]string{user: pass}, Without: []string{tc.without}})
				d := dialerFor(s)
				d.NoPipelining = !pipelined
				c, err := d.Dial(context.Background(), serverFor(s, tenant.SecurityTLS, pass))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_, err = c.SendContent("a@acme.example", []string{"b@example.com"}, []byte("Subject: x\r\n\r\n\xc3\xa9\r\n"), tc.ct)
				e := mustTransportError(t, err)
				if e.Code != CodeProtocol || !e.Permanent() || e.Stage != StageMail || !bytes.Contains([]byte(e.Message), []byte(tc.without)) {
					t.Errorf("error %+v, want a permanent protocol_error naming %s", e, tc.without)
				}
				if n := len(s.Messages()); n != 0 {
					t.Errorf("the server received %d messages", n)
				}
				if !c.Reusable(err) {
					c, err = d.Dial(context.Background(), serverFor(s, tenant.SecurityTLS, pass))
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
				}
				if _, err := c.Send("a@acme.example", []string{"b@example.com"}, []byte("Subject: x\r\n\r\nascii\r\n")); err != nil {
					t.Fatalf("a 7-bit message: %v", err)
				}
				if got := s.WaitMessages(t, 1, 5e9)[0]; got.Body == "8BITMIME" && tc.without == "8BITMIME" {
					t.Errorf("MAIL said BODY=8BITMIME to a server that does not offer it")
				}
			})
		}
	}
}
