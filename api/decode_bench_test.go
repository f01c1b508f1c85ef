package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/outbound-mail/outbound/internal/message"
)

// BenchmarkDecodeMessage measures reading and decoding a POST /v1/messages
// body: a 1 KB text to one recipient, and the same with a 1 MB attachment.
func BenchmarkDecodeMessage(b *testing.B) {
	small := message.Request{
		TenantID: "acme",
		From:     &message.Address{Name: "Acme Billing", Email: "acme@gmail.com"},
		To:       []message.Address{{Name: "Client", Email: "client@example.com"}},
		Subject:  "Invoice 42",
		Text:     strings.Repeat("Your invoice 42 is attached. Thank you!\n", 1024/40),
	}
	big := small
	big.Attachments = []message.Attachment{{Filename: "invoice-42.pdf", ContentType: "application/pdf",
		Content: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0, 1, 2, 3, 250, 251}, 1<<20/6))}}
	for name, r := range map[string]message.Request{"1KB-text": small, "1MB-attachment": big} {
		body, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		text := string(body)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				var got message.Request
				if _, err := decodeJSONBody(jsonContext(text), &got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
