package message

import (
	"encoding/base64"
	"io"
	"strings"
	"testing"
)

// benchRequests are the two shapes measured: a 1 KB text to one
// recipient, and the same with a 1 MB attachment.
func benchRequests(b *testing.B) map[string]*Request {
	b.Helper()
	small := &Request{
		TenantID: "acme",
		From:     &Address{Name: "Acme Billing", Email: "acme@gmail.com"},
		To:       []Address{{Name: "Client", Email: "client@example.com"}},
		Subject:  "Invoice 42",
		Text:     strings.Repeat("Your invoice 42 is attached. Thank you!\n", 1024/40),
	}
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	big := *small
	big.Attachments = []Attachment{{Filename: "invoice-42.pdf", ContentType: "application/pdf",
		Content: base64.StdEncoding.EncodeToString(data)}}
	return map[string]*Request{"1KB-text": small, "1MB-attachment": &big}
}

func BenchmarkValidate(b *testing.B) {
	for _, name := range []string{"1KB-text", "1MB-attachment"} {
		r := benchRequests(b)[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(r.Text)) + contentLen(r))
			for b.Loop() {
				if err := r.Validate(Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCompose(b *testing.B) {
	for _, name := range []string{"1KB-text", "1MB-attachment"} {
		r := benchRequests(b)[name]
		h := headerFor(r)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(r.Text)) + contentLen(r))
			for b.Loop() {
				if err := Compose(io.Discard, r, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func contentLen(r *Request) int64 {
	var n int64
	for _, a := range r.Attachments {
		n += int64(len(a.Content))
	}
	return n
}

// BenchmarkScanText measures one pass over a 1 KB text body, which
// Validate and Compose each make.
func BenchmarkScanText(b *testing.B) {
	s := strings.Repeat("Your invoice 42 is attached. Thank you!\n", 1024/40)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		scanText(s)
	}
}

// BenchmarkWriteCanonical measures writing 1 MB of text with LF line
// breaks as CRLF, as a 7bit text part is written.
func BenchmarkWriteCanonical(b *testing.B) {
	s := strings.Repeat("Your invoice 42 is attached. Thank you!\n", 1<<20/40)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if err := writeCanonical(io.Discard, s); err != nil {
			b.Fatal(err)
		}
	}
}
