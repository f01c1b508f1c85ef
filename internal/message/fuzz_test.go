package message

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

// FuzzValidate feeds arbitrary JSON through the accept path: decoding and
// Validate must never panic, and whatever Validate accepts must compose
// into a message that reads back with the same recipients, subject, bodies
// and attachments, no field other than the expected ones (no header
// injection), no Bcc, CRLF lines of at most 998 octets, and no more bytes
// than the estimate. Seeds are in testdata/fuzz/FuzzValidate.
func FuzzValidate(f *testing.F) {
	f.Add([]byte(exampleJSON))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		if err := json.Unmarshal(data, &r); err != nil {
			return
		}
		if err := r.Validate(Limits{MaxMessageBytes: 1 << 20}); err != nil {
			return
		}
		if err := checkRoundTrip(&r, headerFor(&r)); err != nil {
			t.Fatalf("%v\nrequest: %s", err, data)
		}
	})
}

// FuzzCompose drives the header-facing fields directly, without JSON's
// escaping in the way (invalid UTF-8, lone CRs, NULs reach Validate as
// they are), with the same checks. Seeds are in testdata/fuzz/FuzzCompose.
func FuzzCompose(f *testing.F) {
	f.Fuzz(func(t *testing.T, subject, name, email, text, html, filename, hname, hvalue string, content []byte) {
		r := &Request{
			TenantID: "acme",
			To:       []Address{{Name: name, Email: email}},
			Cc:       []Address{{Name: subject, Email: "cc@example.com"}},
			Bcc:      []Address{{Email: "hidden@example.com"}},
			Subject:  subject,
			Text:     text,
			HTML:     html,
			Headers:  map[string]string{hname: hvalue},
			Attachments: []Attachment{{Filename: filename, ContentType: "application/octet-stream",
				Content: base64.StdEncoding.EncodeToString(content)}},
		}
		if err := r.Validate(Limits{}); err != nil {
			return
		}
		if err := checkRoundTrip(r, headerFor(r)); err != nil {
			t.Fatalf("%v\nrequest: %+v", err, r)
		}
	})
}
