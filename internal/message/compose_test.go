package message

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"regexp"
	"strings"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"
)

const arabicFilename = "فاتورة رقم 42.pdf"

func TestComposeExample(t *testing.T) {
	r := mustExample(t)
	pdf := []byte("%PDF-1.4\n\x00\x01\xfe\xff binary")
	r.Attachments = append(r.Attachments, Attachment{
		Filename: arabicFilename, ContentType: "application/pdf",
		Content: base64.StdEncoding.EncodeToString(pdf),
	})
	if err := r.Validate(Limits{}); err != nil {
		t.Fatal(err)
	}
	h := headerFor(r)
	raw := mustCompose(t, r, h)
	if err := checkWire(raw); err != nil {
		t.Fatal(err)
	}
	p, err := parseMessage(raw)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("addresses", func(t *testing.T) {
		if len(p.from) != 1 || p.from[0].Name != "Acme Billing" || p.from[0].Address != "acme@gmail.com" {
			t.Errorf("From = %v", p.from)
		}
		if len(p.to) != 1 || p.to[0].Name != "Client" || p.to[0].Address != "client@example.com" {
			t.Errorf("To = %v", p.to)
		}
		if len(p.cc) != 0 {
			t.Errorf("Cc = %v, want none", p.cc)
		}
		if len(p.replyTo) != 1 || p.replyTo[0].Address != "support@acme.example" {
			t.Errorf("Reply-To = %v", p.replyTo)
		}
	})
	t.Run("no bcc", func(t *testing.T) {
		if regexp.MustCompile(`(?im)^bcc:`).Match(raw) {
			t.Error("a Bcc field was written")
		}
		if bytes.Contains(bytes.ToLower(raw), []byte("archive@example.com")) {
			t.Error("the Bcc address appears in the message")
		}
	})
	t.Run("subject", func(t *testing.T) {
		if p.subject != "فاتورة رقم 42" {
			t.Errorf("subject = %q", p.subject)
		}
		if !regexp.MustCompile(`(?m)^Subject: =\?utf-8\?[bq]\?`).Match(raw) {
			t.Errorf("subject is not RFC 2047 encoded:\n%s", raw)
		}
	})
	t.Run("date and message id", func(t *testing.T) {
		id, err := p.header.MessageID()
		if err != nil || "<"+id+">" != h.MessageID {
			t.Errorf("Message-ID = %q, %v; want %s", id, err, h.MessageID)
		}
		d, err := p.header.Date()
		if err != nil || !d.Equal(h.Date) {
			t.Errorf("Date = %v, %v; want %v", d, err, h.Date)
		}
		if p.header.Get("Mime-Version") != "1.0" {
			t.Errorf("MIME-Version = %q", p.header.Get("Mime-Version"))
		}
	})
	t.Run("header order", func(t *testing.T) {
		want := []string{"From", "To", "Reply-To", "Subject", "Date", "Message-Id", "Mime-Version", "X-Invoice-Id", "Content-Type"}
		if strings.Join(p.keys, ",") != strings.Join(want, ",") {
			t.Errorf("fields %v, want %v", p.keys, want)
		}
	})
	t.Run("custom header", func(t *testing.T) {
		if got := p.header.Get("X-Invoice-Id"); got != "42" {
			t.Errorf("X-Invoice-Id = %q", got)
		}
	})
	t.Run("bodies", func(t *testing.T) {
		if len(p.text) != 1 || p.text[0] != "plain body" {
			t.Errorf("text parts %q", p.text)
		}
		if len(p.html) != 1 || p.html[0] != "<p>html body</p>" {
			t.Errorf("html parts %q", p.html)
		}
	})
	t.Run("attachments", func(t *testing.T) {
		if len(p.attachments) != 2 {
			t.Fatalf("%d attachments", len(p.attachments))
		}
		a := p.attachments[0]
		if a.filename != "invoice-42.pdf" || a.contentType != "application/pdf" || string(a.data) != "%PDF-1.4\n" {
			t.Errorf("attachment 0 = %q %q %q", a.filename, a.contentType, a.data)
		}
		a = p.attachments[1]
		if a.filename != arabicFilename || !bytes.Equal(a.data, pdf) {
			t.Errorf("attachment 1 = %q %q", a.filename, a.data)
		}
		// The standard RFC 2231 form alone: no RFC 2047 words inside
		// quotes, no plain filename beside it for readers to prefer.
		if !bytes.Contains(raw, []byte("Content-Disposition: attachment;\r\n filename*=utf-8''%D9%81%D8%A7")) {
			t.Errorf("no RFC 2231 filename in\n%s", raw)
		}
		if bytes.Contains(raw, []byte(`filename="=?`)) || bytes.Contains(raw, []byte(`filename="____`)) {
			t.Error("a quoted filename beside the RFC 2231 one")
		}
		// And the standard library's RFC 2231 decoder agrees.
		i := bytes.Index(raw, []byte("Content-Disposition: attachment;\r\n filename*="))
		if i < 0 {
			t.Fatalf("no RFC 2231 filename in\n%s", raw)
		}
		field, _, _ := bytes.Cut(raw[i+len("Content-Disposition:"):], []byte("\r\n\r\n"))
		_, params, err := mime.ParseMediaType(strings.ReplaceAll(string(field), "\r\n", ""))
		if err != nil || params["filename"] != arabicFilename {
			t.Errorf("mime.ParseMediaType = %q, %v", params["filename"], err)
		}
	})
	t.Run("size within estimate", func(t *testing.T) {
		if est := estimateSize(r); int64(len(raw)) > est {
			t.Errorf("composed %d bytes, estimate %d", len(raw), est)
		}
	})
}

// mediaTree returns the MIME structure of raw, e.g.
// "multipart/mixed(multipart/alternative(text/plain,text/html),application/pdf)".
func mediaTree(t *testing.T, raw []byte) string {
	t.Helper()
	e, err := gomessage.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(e *gomessage.Entity) string
	walk = func(e *gomessage.Entity) string {
		mt, _, _ := e.Header.ContentType()
		mr := e.MultipartReader()
		if mr == nil {
			io.Copy(io.Discard, e.Body)
			return mt
		}
		var parts []string
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, walk(p))
		}
		return mt + "(" + strings.Join(parts, ",") + ")"
	}
	return walk(e)
}

func TestComposeStructure(t *testing.T) {
	att := []Attachment{{Filename: "a.bin", Content: "AAAA"}, {Filename: "b.txt", ContentType: "text/plain", Content: "aGk="}}
	tests := []struct {
		name        string
		text, html  string
		attachments []Attachment
		want        string
	}{
		{"text only", "hi", "", nil, "text/plain"},
		{"html only", "", "<b>hi</b>", nil, "multipart/alternative(text/plain,text/html)"},
		{"html without text", "", `<img src="cid:x">`, nil, "text/html"},
		{"both", "hi", "<b>hi</b>", nil, "multipart/alternative(text/plain,text/html)"},
		{"text and attachments", "hi", "", att, "multipart/mixed(text/plain,application/octet-stream,text/plain)"},
		{"html and attachment", "", "<b>hi</b>", att[:1],
			"multipart/mixed(multipart/alternative(text/plain,text/html),application/octet-stream)"},
		{"html without text and attachment", "", "<br>", att[:1], "multipart/mixed(text/html,application/octet-stream)"},
		{"both and attachments", "hi", "<b>hi</b>", att,
			"multipart/mixed(multipart/alternative(text/plain,text/html),application/octet-stream,text/plain)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{TenantID: "acme", To: []Address{{Email: "a@example.com"}}, Subject: "s",
				Text: tt.text, HTML: tt.html, Attachments: tt.attachments}
			if err := r.Validate(Limits{}); err != nil {
				t.Fatal(err)
			}
			raw := mustCompose(t, r, headerFor(r))
			if got := mediaTree(t, raw); got != tt.want {
				t.Errorf("structure %s, want %s", got, tt.want)
			}
			if err := checkRoundTrip(r, headerFor(r)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestTransferEncoding(t *testing.T) {
	tests := []struct {
		name string
		text string
		want transferEncoding
	}{
		{"short ASCII", "Hello,\nyour invoice is attached.\n", enc7bit},
		{"ASCII line of 998", strings.Repeat("x", 998), enc7bit},
		{"ASCII line of 999", strings.Repeat("x", 999), encQuotedPrintable},
		{"mostly ASCII", "Café au lait, s'il vous plaît. " + strings.Repeat("Merci beaucoup. ", 10), encQuotedPrintable},
		{"Arabic", strings.Repeat("فاتورة رقم 42 مستحقة الدفع. ", 20), encBase64},
		{"bare CRs", "a\rb\rc", enc7bit},
		{"trailing spaces and equals", "a = b   \r\nc\t\n", enc7bit},
		{"control characters", "bell\x07 and form feed\x0c", enc7bit},
		{"trailing whitespace in QP", strings.Repeat("café au lait   \nx\t", 5), encQuotedPrintable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := scanText(tt.text).encoding(); got != tt.want {
				t.Errorf("encoding %s, want %s", got, tt.want)
			}
			r := &Request{TenantID: "acme", To: []Address{{Email: "a@example.com"}}, Text: tt.text,
				HTML: "<p>" + tt.text + "</p>"}
			raw := mustCompose(t, r, headerFor(r))
			if !bytes.Contains(raw, []byte("Content-Transfer-Encoding: "+string(tt.want)+"\r\n")) {
				t.Errorf("no %s part in\n%s", tt.want, raw)
			}
			if err := checkRoundTrip(r, headerFor(r)); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("base64 beats quoted-printable for Arabic", func(t *testing.T) {
		st := scanText(strings.Repeat("مرحبا بكم ", 100))
		_, size := st.encoding()
		if size >= st.qpBound() || size > st.n*3/2 {
			t.Errorf("Arabic text of %d bytes encodes to %d (quoted-printable %d)", st.n, size, st.qpBound())
		}
	})
}

func TestComposeHeaderEdgeCases(t *testing.T) {
	longName := strings.Repeat("n", maxHeaderName-2)
	tests := []struct {
		name   string
		mutate func(r *Request)
	}{
		{"plain subject", func(r *Request) { r.Subject = "Invoice 42 for March" }},
		{"long plain subject", func(r *Request) { r.Subject = strings.Repeat("word ", 150) + "end" }},
		{"subject without spaces", func(r *Request) { r.Subject = strings.Repeat("x", 998) }},
		{"subject that looks encoded", func(r *Request) { r.Subject = "=?utf-8?q?not_encoded?=" }},
		{"subject with double spaces", func(r *Request) { r.Subject = "a  b   c" }},
		{"subject with edge spaces", func(r *Request) { r.Subject = "  padded  " }},
		{"subject with tab", func(r *Request) { r.Subject = "a\tb" }},
		{"empty subject", func(r *Request) { r.Subject = "" }},
		{"long Arabic subject", func(r *Request) { r.Subject = strings.Repeat("فاتورة ", 70) }},
		{"emoji subject", func(r *Request) { r.Subject = "Paid ✅ 🎉🎉🎉 " + strings.Repeat("🎉", 100) }},
		{"Arabic display names", func(r *Request) {
			r.To = []Address{{Name: "شركة أكمي، المحدودة", Email: "a@example.com"}, {Name: "عميل", Email: "b@example.com"}}
		}},
		{"quoted display names", func(r *Request) { r.To[0].Name = `Client "The Best", Inc. \o/` }},
		{"display name that looks encoded", func(r *Request) { r.To[0].Name = "=?utf-8?q?x?=" }},
		{"many long recipients", func(r *Request) {
			r.To, r.Cc = nil, nil
			for i := range 50 {
				r.To = append(r.To, Address{Name: strings.Repeat("Name ", 40) + strings.Repeat("x", i), Email: strings.Repeat("l", 60) + "@example.com"})
				r.Cc = append(r.Cc, Address{Name: strings.Repeat("اسم ", 30), Email: strings.Repeat("c", i+1) + "@example.com"})
			}
		}},
		{"bcc only", func(r *Request) { r.To, r.Cc = nil, nil }},
		{"cc only", func(r *Request) { r.To, r.Cc = nil, []Address{{Email: "cc@example.com"}} }},
		{"longest header name", func(r *Request) { r.Headers = map[string]string{"X-" + longName: strings.Repeat("v", 998)} }},
		{"header value with spaces", func(r *Request) { r.Headers = map[string]string{"X-Long": strings.Repeat("word ", 199)} }},
		{"header value Arabic", func(r *Request) { r.Headers = map[string]string{"X-Note": strings.Repeat("ملاحظة ", 50)} }},
		{"many headers", func(r *Request) {
			r.Headers = map[string]string{"X-B": "2", "X-A": "1", "List-Unsubscribe": "<mailto:u@example.com>, <https://example.com/u?id=1>"}
		}},
		{"long ASCII filename", func(r *Request) { r.Attachments[0].Filename = strings.Repeat("report ", 30) + ".pdf" }},
		{"filename without spaces", func(r *Request) { r.Attachments[0].Filename = strings.Repeat("f", 251) + ".pdf" }},
		{"filename with quotes", func(r *Request) { r.Attachments[0].Filename = `a "quoted" \ name.txt` }},
		{"long Arabic filename", func(r *Request) { r.Attachments[0].Filename = strings.Repeat("ف", 125) + ".pdf" }},
		{"filename with double spaces", func(r *Request) { r.Attachments[0].Filename = "a  b.txt" }},
		{"content type with non-ASCII parameter", func(r *Request) {
			r.Attachments[0].ContentType = `text/csv; charset=windows-1256; name="تقرير.csv"`
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustExample(t)
			tt.mutate(r)
			if err := r.Validate(Limits{MaxRecipients: 1000}); err != nil {
				t.Fatal(err)
			}
			if err := checkRoundTrip(r, headerFor(r)); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("undisclosed recipients", func(t *testing.T) {
		r := mustExample(t)
		r.To = nil
		raw := mustCompose(t, r, headerFor(r))
		if !bytes.Contains(raw, []byte("\r\nTo: undisclosed-recipients:;\r\n")) {
			t.Errorf("no empty To group in\n%s", raw)
		}
	})
}

func TestComposeRefuses(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *Request, h *Header)
		field  string
	}{
		{"subject injection", func(r *Request, h *Header) { r.Subject = "x\r\nBcc: evil@example.com" }, "subject"},
		{"header name injection", func(r *Request, h *Header) { r.Headers = map[string]string{"X-A:\r\nBcc": "x"} }, "headers.X-A:\r\nBcc"},
		{"header value injection", func(r *Request, h *Header) { r.Headers = map[string]string{"X-A": "x\nBcc: e@example.com"} }, "headers.X-A"},
		{"reserved header", func(r *Request, h *Header) { r.Headers = map[string]string{"bcc": "e@example.com"} }, "headers.bcc"},
		{"name injection", func(r *Request, h *Header) { r.To[0].Name = "x\r\nBcc: e@example.com" }, "to[0].name"},
		{"filename injection", func(r *Request, h *Header) { r.Attachments[0].Filename = "a\r\nX: y" }, "attachments[0].filename"},
		{"content type injection", func(r *Request, h *Header) { r.Attachments[0].ContentType = "a/b\r\nX: y" }, "attachments[0].content_type"},
		{"route From bad", func(r *Request, h *Header) { h.From.Email = "x\r\nBcc: e@example.com" }, "header.from.email"},
		{"route From name bad", func(r *Request, h *Header) { h.From.Name = "x\ny" }, "header.from.name"},
		{"route Reply-To bad", func(r *Request, h *Header) { h.ReplyTo = []Address{{Email: "nope"}} }, "header.reply_to[0].email"},
		{"message id missing", func(r *Request, h *Header) { h.MessageID = "" }, "header.message_id"},
		{"message id injection", func(r *Request, h *Header) { h.MessageID = "<a@b>\r\nBcc: e@example.com" }, "header.message_id"},
		{"message id without brackets", func(r *Request, h *Header) { h.MessageID = "a@b" }, "header.message_id"},
		{"date missing", func(r *Request, h *Header) { h.Date = time.Time{} }, "header.date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustExample(t)
			h := headerFor(r)
			tt.mutate(r, &h)
			var b bytes.Buffer
			err := Compose(&b, r, h)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Compose = %v, want a *ValidationError", err)
			}
			if !strings.HasPrefix(err.Error(), "message: compose: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			found := false
			for _, f := range ve.Fields {
				found = found || f.Field == tt.field
			}
			if !found {
				t.Errorf("no error for %q in %+v", tt.field, ve.Fields)
			}
			if b.Len() != 0 {
				t.Errorf("wrote %d bytes before refusing", b.Len())
			}
		})
	}
	t.Run("bad base64 reaching Compose", func(t *testing.T) {
		r := mustExample(t)
		r.Attachments[0].Content = "QUJD!!!!"
		err := Compose(io.Discard, r, headerFor(r))
		if !errors.Is(err, errContent) || !strings.Contains(err.Error(), "attachments[0]") {
			t.Fatalf("Compose = %v, want errContent for attachments[0]", err)
		}
	})
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestComposeWriteError(t *testing.T) {
	r := mustExample(t)
	r.Attachments[0].Content = base64.StdEncoding.EncodeToString(make([]byte, 200<<10))
	err := Compose(&failingWriter{n: 100 << 10}, r, headerFor(r))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Compose = %v, want the writer's error", err)
	}
}

func TestNewMessageID(t *testing.T) {
	re := regexp.MustCompile(`^<[0-9a-f]{32}@gmail\.com>$`)
	a, b := NewMessageID("acme@gmail.com"), NewMessageID("acme@gmail.com")
	if !re.MatchString(a) || !re.MatchString(b) {
		t.Errorf("NewMessageID = %q, %q", a, b)
	}
	if a == b {
		t.Error("two identical Message-IDs")
	}
	if got := NewMessageID("nodomain"); !strings.HasSuffix(got, "@localhost>") || !validMessageID(got) {
		t.Errorf("NewMessageID(nodomain) = %q", got)
	}
	long := NewMessageID("a@" + strings.Repeat("d", 253))
	if !validMessageID(long) || len(long) > maxMessageID {
		t.Errorf("Message-ID for the longest domain is %d bytes", len(long))
	}
}
