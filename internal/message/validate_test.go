package message

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestValidateExample(t *testing.T) {
	if err := mustExample(t).Validate(Limits{}); err != nil {
		t.Fatalf("the example request is refused: %v", err)
	}
}

// fieldErrors returns Validate's field errors, failing when it returns
// something else.
func fieldErrors(t *testing.T, r *Request, lim Limits) []FieldError {
	t.Helper()
	err := r.Validate(lim)
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate returned %T %v, want *ValidationError", err, err)
	}
	return ve.Fields
}

func hasField(fs []FieldError, field, code string) bool {
	for _, f := range fs {
		if f.Field == field && f.Code == code {
			return true
		}
	}
	return false
}

func TestValidateRules(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name   string
		lim    Limits
		mutate func(r *Request)
		field  string
		code   string
	}{
		{"tenant id missing", Limits{}, func(r *Request) { r.TenantID = "" }, "tenant_id", "required"},
		{"tenant id bad start", Limits{}, func(r *Request) { r.TenantID = "-acme" }, "tenant_id", "invalid_tenant_id"},
		{"tenant id bad char", Limits{}, func(r *Request) { r.TenantID = "acme/x" }, "tenant_id", "invalid_tenant_id"},
		{"tenant id too long", Limits{}, func(r *Request) { r.TenantID = long(65) }, "tenant_id", "invalid_tenant_id"},
		{"no recipients", Limits{}, func(r *Request) { r.To, r.Cc, r.Bcc = nil, nil, nil }, "to", "required"},
		{"too many recipients", Limits{MaxRecipients: 2}, func(r *Request) {
			r.Cc = []Address{{Email: "a@example.com"}, {Email: "b@example.com"}}
		}, "to", "too_many_recipients"},
		{"to email missing", Limits{}, func(r *Request) { r.To[0].Email = "" }, "to[0].email", "required"},
		{"to email with display name", Limits{}, func(r *Request) { r.To[0].Email = "Client <client@example.com>" }, "to[0].email", "invalid_email"},
		{"to email with brackets", Limits{}, func(r *Request) { r.To[0].Email = "<client@example.com>" }, "to[0].email", "invalid_email"},
		{"to email without domain", Limits{}, func(r *Request) { r.To[0].Email = "client" }, "to[0].email", "invalid_email"},
		{"to email too long", Limits{}, func(r *Request) { r.To[0].Email = long(250) + "@example.com" }, "to[0].email", "too_long"},
		{"to email CRLF", Limits{}, func(r *Request) { r.To[0].Email = "a@example.com\r\nBcc: x@evil.example" }, "to[0].email", "invalid_characters"},
		{"cc email bad", Limits{}, func(r *Request) { r.Cc = []Address{{Email: "ok@example.com"}, {Email: "nope"}} }, "cc[1].email", "invalid_email"},
		{"bcc email bad", Limits{}, func(r *Request) { r.Bcc[0].Email = "a b@example.com" }, "bcc[0].email", "invalid_email"},
		{"from email bad", Limits{}, func(r *Request) { r.From.Email = "acme" }, "from.email", "invalid_email"},
		{"from name LF", Limits{}, func(r *Request) { r.From.Name = "Acme\nBcc: x@evil.example" }, "from.name", "invalid_characters"},
		{"name NUL", Limits{}, func(r *Request) { r.To[0].Name = "a\x00b" }, "to[0].name", "invalid_characters"},
		{"name DEL", Limits{}, func(r *Request) { r.To[0].Name = "a\x7fb" }, "to[0].name", "invalid_characters"},
		{"name escape", Limits{}, func(r *Request) { r.To[0].Name = "a\x1bb" }, "to[0].name", "invalid_characters"},
		{"name too long", Limits{}, func(r *Request) { r.To[0].Name = long(257) }, "to[0].name", "too_long"},
		{"reply-to email bad", Limits{}, func(r *Request) { r.ReplyTo[0].Email = "support@" }, "reply_to[0].email", "invalid_email"},
		// An address literal names a host, not a domain with MX records: a
		// relay would connect to it directly (RFC 5321 section 4.1.3).
		{"to IPv4 literal", Limits{}, func(r *Request) { r.To[0].Email = "x@[127.0.0.1]" }, "to[0].email", "address_literal"},
		{"cc IPv6 literal", Limits{}, func(r *Request) { r.Cc = []Address{{Email: "x@[IPv6:::1]"}} }, "cc[0].email", "address_literal"},
		{"bcc literal", Limits{}, func(r *Request) { r.Bcc[0].Email = "x@[10.0.0.5]" }, "bcc[0].email", "address_literal"},
		{"reply-to literal", Limits{}, func(r *Request) { r.ReplyTo[0].Email = "x@[169.254.169.254]" }, "reply_to[0].email", "address_literal"},
		{"subject CRLF", Limits{}, func(r *Request) { r.Subject = "Hi\r\nBcc: x@evil.example" }, "subject", "invalid_characters"},
		{"subject bare CR", Limits{}, func(r *Request) { r.Subject = "Hi\rthere" }, "subject", "invalid_characters"},
		{"subject invalid UTF-8", Limits{}, func(r *Request) { r.Subject = "caf\xe9" }, "subject", "invalid_characters"},
		{"subject too long", Limits{}, func(r *Request) { r.Subject = long(999) }, "subject", "too_long"},
		{"no body", Limits{}, func(r *Request) { r.Text, r.HTML = "", "" }, "text", "required"},
		{"text NUL", Limits{}, func(r *Request) { r.Text = "a\x00b" }, "text", "invalid_characters"},
		{"html NUL", Limits{}, func(r *Request) { r.HTML = "<p>\x00</p>" }, "html", "invalid_characters"},
		{"header name CRLF", Limits{}, func(r *Request) { r.Headers = map[string]string{"X-A\r\nBcc": "x"} }, "headers.X-A\r\nBcc", "invalid_characters"},
		{"header name space", Limits{}, func(r *Request) { r.Headers = map[string]string{"X Foo": "x"} }, "headers.X Foo", "invalid_header_name"},
		{"header name colon", Limits{}, func(r *Request) { r.Headers = map[string]string{"X-Foo:": "x"} }, "headers.X-Foo:", "invalid_header_name"},
		{"header name non-ASCII", Limits{}, func(r *Request) { r.Headers = map[string]string{"X-Fé": "x"} }, "headers.X-Fé", "invalid_header_name"},
		{"header name empty", Limits{}, func(r *Request) { r.Headers = map[string]string{"": "x"} }, "headers.", "invalid_header_name"},
		{"header name too long", Limits{}, func(r *Request) { r.Headers = map[string]string{"X-" + long(75): "x"} }, "headers.X-" + long(75), "too_long"},
		{"header value CRLF", Limits{}, func(r *Request) { r.Headers = map[string]string{"X-Foo": "a\r\nBcc: x@evil.example"} }, "headers.X-Foo", "invalid_characters"},
		{"header value too long", Limits{}, func(r *Request) { r.Headers = map[string]string{"X-Foo": long(999)} }, "headers.X-Foo", "too_long"},
		{"header reserved From", Limits{}, func(r *Request) { r.Headers = map[string]string{"from": "x@example.com"} }, "headers.from", "reserved_header"},
		{"header reserved Bcc", Limits{}, func(r *Request) { r.Headers = map[string]string{"BCC": "x@example.com"} }, "headers.BCC", "reserved_header"},
		{"header reserved Message-ID", Limits{}, func(r *Request) { r.Headers = map[string]string{"Message-Id": "<a@b>"} }, "headers.Message-Id", "reserved_header"},
		{"header reserved DKIM", Limits{}, func(r *Request) { r.Headers = map[string]string{"dkim-signature": "v=1"} }, "headers.dkim-signature", "reserved_header"},
		{"header reserved Resent-*", Limits{}, func(r *Request) { r.Headers = map[string]string{"Resent-To": "x@example.com"} }, "headers.Resent-To", "reserved_header"},
		{"header reserved resent-from", Limits{}, func(r *Request) { r.Headers = map[string]string{"resent-from": "x@example.com"} }, "headers.resent-from", "reserved_header"},
		{"header reserved ARC-*", Limits{}, func(r *Request) { r.Headers = map[string]string{"ARC-Seal": "i=1"} }, "headers.ARC-Seal", "reserved_header"},
		{"header reserved arc-authentication-results", Limits{}, func(r *Request) {
			r.Headers = map[string]string{"arc-authentication-results": "i=1; spf=pass"}
		}, "headers.arc-authentication-results", "reserved_header"},
		{"header reserved Authentication-Results", Limits{}, func(r *Request) {
			r.Headers = map[string]string{"Authentication-Results": "mx.example; dkim=pass"}
		}, "headers.Authentication-Results", "reserved_header"},
		{"header reserved DKIM-*", Limits{}, func(r *Request) { r.Headers = map[string]string{"DKIM-Filter": "x"} }, "headers.DKIM-Filter", "reserved_header"},
		{"header reserved Received", Limits{}, func(r *Request) { r.Headers = map[string]string{"received": "from x"} }, "headers.received", "reserved_header"},
		{"header reserved Received-SPF", Limits{}, func(r *Request) { r.Headers = map[string]string{"Received-SPF": "pass"} }, "headers.Received-SPF", "reserved_header"},
		{"header reserved Delivered-To", Limits{}, func(r *Request) { r.Headers = map[string]string{"Delivered-To": "x@example.com"} }, "headers.Delivered-To", "reserved_header"},
		{"header reserved X-Original-To", Limits{}, func(r *Request) { r.Headers = map[string]string{"X-Original-To": "x@example.com"} }, "headers.X-Original-To", "reserved_header"},
		{"header reserved Return-Path", Limits{}, func(r *Request) { r.Headers = map[string]string{"return-path": "<x@example.com>"} }, "headers.return-path", "reserved_header"},
		{"header reserved Content-*", Limits{}, func(r *Request) { r.Headers = map[string]string{"content-type": "text/html"} }, "headers.content-type", "reserved_header"},
		{"header reserved Content-Disposition", Limits{}, func(r *Request) { r.Headers = map[string]string{"Content-Disposition": "inline"} }, "headers.Content-Disposition", "reserved_header"},
		{"attachment filename missing", Limits{}, func(r *Request) { r.Attachments[0].Filename = "" }, "attachments[0].filename", "required"},
		{"attachment filename CRLF", Limits{}, func(r *Request) { r.Attachments[0].Filename = "a\r\n.pdf" }, "attachments[0].filename", "invalid_characters"},
		{"attachment filename too long", Limits{}, func(r *Request) { r.Attachments[0].Filename = long(256) }, "attachments[0].filename", "too_long"},
		{"attachment content type CRLF", Limits{}, func(r *Request) { r.Attachments[0].ContentType = "text/plain\r\nBcc: x" }, "attachments[0].content_type", "invalid_characters"},
		{"attachment content type unparsable", Limits{}, func(r *Request) { r.Attachments[0].ContentType = "application/pdf; =x" }, "attachments[0].content_type", "invalid_content_type"},
		{"attachment content type without subtype", Limits{}, func(r *Request) { r.Attachments[0].ContentType = "pdf" }, "attachments[0].content_type", "invalid_content_type"},
		{"attachment content type multipart", Limits{}, func(r *Request) { r.Attachments[0].ContentType = "multipart/mixed; boundary=x" }, "attachments[0].content_type", "invalid_content_type"},
		{"attachment content type message", Limits{}, func(r *Request) { r.Attachments[0].ContentType = "message/rfc822" }, "attachments[0].content_type", "invalid_content_type"},
		{"attachment content type too long", Limits{}, func(r *Request) { r.Attachments[0].ContentType = "application/x-" + long(250) }, "attachments[0].content_type", "too_long"},
		{"attachment content not base64", Limits{}, func(r *Request) { r.Attachments[0].Content = "not base64!" }, "attachments[0].content", "invalid_base64"},
		{"attachment content unpadded", Limits{}, func(r *Request) { r.Attachments[0].Content = "QQ" }, "attachments[0].content", "invalid_base64"},
		{"attachment content URL alphabet", Limits{}, func(r *Request) { r.Attachments[0].Content = "-_-_" }, "attachments[0].content", "invalid_base64"},
		{"attachment content data after padding", Limits{}, func(r *Request) { r.Attachments[0].Content = "QQ==QUJD" }, "attachments[0].content", "invalid_base64"},
		{"message too large", Limits{MaxMessageBytes: 1000}, func(r *Request) {}, "attachments", "too_large"},
		{"text too large", Limits{MaxMessageBytes: 10000}, func(r *Request) { r.Attachments = nil; r.Text = long(20000) }, "text", "too_large"},
		{"attachment too large", Limits{MaxMessageBytes: 64 << 10}, func(r *Request) {
			r.Attachments[0].Content = base64.StdEncoding.EncodeToString(make([]byte, 64<<10))
		}, "attachments", "too_large"},
		{"too many tags", Limits{}, func(r *Request) { r.Tags = strings.Split(strings.Repeat("t,", 21)[:41], ",") }, "tags", "too_many"},
		{"tag empty", Limits{}, func(r *Request) { r.Tags = []string{"a", ""} }, "tags[1]", "required"},
		{"tag too long", Limits{}, func(r *Request) { r.Tags = []string{long(65)} }, "tags[0]", "too_long"},
		{"tag CRLF", Limits{}, func(r *Request) { r.Tags = []string{"a\r\nb"} }, "tags[0]", "invalid_characters"},
		{"too many metadata keys", Limits{}, func(r *Request) {
			r.Metadata = map[string]string{}
			for i := range 51 {
				r.Metadata[strings.Repeat("k", i+1)] = "v"
			}
		}, "metadata", "too_many"},
		{"metadata key too long", Limits{}, func(r *Request) { r.Metadata = map[string]string{long(65): "v"} }, "metadata." + long(65), "too_long"},
		{"metadata key LF", Limits{}, func(r *Request) { r.Metadata = map[string]string{"a\nb": "v"} }, "metadata.a\nb", "invalid_characters"},
		{"metadata value too long", Limits{}, func(r *Request) { r.Metadata = map[string]string{"k": long(1025)} }, "metadata.k", "too_long"},
		{"metadata value NUL", Limits{}, func(r *Request) { r.Metadata = map[string]string{"k": "\x00"} }, "metadata.k", "invalid_characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustExample(t)
			tt.mutate(r)
			fs := fieldErrors(t, r, tt.lim)
			if !hasField(fs, tt.field, tt.code) {
				t.Fatalf("want %s %s, got %+v", tt.field, tt.code, fs)
			}
		})
	}
}

// Each accepted edge case really is accepted.
func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *Request)
	}{
		{"bcc only", func(r *Request) { r.To = nil }},
		{"text only", func(r *Request) { r.HTML = "" }},
		{"html only", func(r *Request) { r.Text = "" }},
		{"no from", func(r *Request) { r.From = nil }},
		{"empty subject", func(r *Request) { r.Subject = "" }},
		{"tab in subject", func(r *Request) { r.Subject = "a\tb" }},
		{"text with CRLF and LF", func(r *Request) { r.Text = "a\r\nb\nc\rd" }},
		{"base64 with line breaks and spaces", func(r *Request) { r.Attachments[0].Content = "JVBE\r\nRi0x LjQK\n" }},
		{"empty attachment", func(r *Request) { r.Attachments[0].Content = "" }},
		{"default content type", func(r *Request) { r.Attachments[0].ContentType = "" }},
		{"content type with parameters", func(r *Request) { r.Attachments[0].ContentType = `text/csv; charset=iso-8859-1; name="a b.csv"` }},
		{"Arabic filename", func(r *Request) { r.Attachments[0].Filename = "فاتورة.pdf" }},
		{"custom header with Arabic value", func(r *Request) { r.Headers["X-Note"] = "ملاحظة" }},
		{"long header name", func(r *Request) { r.Headers["X-"+strings.Repeat("a", 74)] = "v" }},
		{"duplicate recipients under the limit", func(r *Request) {
			r.Cc = []Address{{Email: "CLIENT@example.com"}} // 3 given, 2 distinct
		}},
		{"quoted display name characters", func(r *Request) { r.To[0].Name = `Client "The Best" \ Co.` }},
		{"exactly 20 tags", func(r *Request) { r.Tags = strings.Split(strings.Repeat("t,", 20)[:39], ",") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustExample(t)
			tt.mutate(r)
			if fs := fieldErrors(t, r, Limits{MaxRecipients: 2}); fs != nil {
				t.Fatalf("refused: %+v", fs)
			}
		})
	}
}

func TestValidateListsEveryError(t *testing.T) {
	r := mustExample(t)
	r.TenantID = ""
	r.To[0].Email = "bad"
	r.Subject = "a\r\nb"
	r.Headers = map[string]string{"To": "x", "X-B": "a\nb", "X A": "v"}
	r.Attachments[0].Content = "!!!!"
	r.Tags = []string{""}
	fs := fieldErrors(t, r, Limits{})
	want := []FieldError{
		{Field: "tenant_id", Code: "required"},
		{Field: "to[0].email", Code: "invalid_email"},
		{Field: "subject", Code: "invalid_characters"},
		{Field: "attachments[0].content", Code: "invalid_base64"},
		{Field: "headers.To", Code: "reserved_header"},
		{Field: "headers.X A", Code: "invalid_header_name"},
		{Field: "headers.X-B", Code: "invalid_characters"},
		{Field: "tags[0]", Code: "required"},
	}
	if len(fs) != len(want) {
		t.Fatalf("got %d errors, want %d: %+v", len(fs), len(want), fs)
	}
	for i, w := range want {
		if fs[i].Field != w.Field || fs[i].Code != w.Code || fs[i].Message == "" {
			t.Errorf("error %d = %+v, want %s %s with a message", i, fs[i], w.Field, w.Code)
		}
	}
	err := r.Validate(Limits{})
	for _, w := range want {
		if !strings.Contains(err.Error(), w.Field) {
			t.Errorf("Error() %q does not name %s", err, w.Field)
		}
	}
}

func TestRecipients(t *testing.T) {
	r := &Request{
		To:  []Address{{Email: "a@example.com"}, {Email: "B@example.com"}},
		Cc:  []Address{{Email: "b@EXAMPLE.com"}, {Email: "c@example.com"}, {Email: ""}},
		Bcc: []Address{{Email: "A@example.com"}, {Email: "d@example.com"}},
	}
	got := r.Recipients()
	want := []string{"a@example.com", "B@example.com", "c@example.com", "d@example.com"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Recipients() = %q, want %q", got, want)
	}
	if r.RecipientCount() != 4 {
		t.Fatalf("RecipientCount() = %d", r.RecipientCount())
	}
	// The limit counts distinct recipients.
	r.TenantID, r.Text = "acme", "x"
	if fs := fieldErrors(t, r, Limits{MaxRecipients: 4}); hasField(fs, "to", "too_many_recipients") {
		t.Fatalf("4 distinct recipients refused at a limit of 4: %+v", fs)
	}
	if fs := fieldErrors(t, r, Limits{MaxRecipients: 3}); !hasField(fs, "to", "too_many_recipients") {
		t.Fatalf("4 distinct recipients accepted at a limit of 3: %+v", fs)
	}
}

func TestDefaultRecipientLimit(t *testing.T) {
	r := mustExample(t)
	r.Bcc = nil
	for i := range 100 {
		r.Bcc = append(r.Bcc, Address{Email: "r" + strings.Repeat("x", i) + "@example.com"})
	}
	if fs := fieldErrors(t, r, Limits{}); !hasField(fs, "to", "too_many_recipients") {
		t.Fatalf("101 recipients accepted by default: %+v", fs)
	}
	r.Bcc = r.Bcc[:99]
	if fs := fieldErrors(t, r, Limits{}); fs != nil {
		t.Fatalf("100 recipients refused by default: %+v", fs)
	}
}

func TestDefaultSizeLimit(t *testing.T) {
	r := mustExample(t)
	r.Attachments = nil
	r.Text = strings.Repeat("0123456789 abcd\n", 25<<20/16) // 25 MiB of 7bit text
	if fs := fieldErrors(t, r, Limits{}); !hasField(fs, "text", "too_large") {
		t.Fatalf("a 25 MiB text accepted by default: %+v", fs)
	}
	r.Text = r.Text[:23<<20] // 23 MiB, 24.4 MiB with CRLF line breaks
	if fs := fieldErrors(t, r, Limits{}); fs != nil {
		t.Fatalf("a 23 MiB text refused by default: %+v", fs)
	}
}
