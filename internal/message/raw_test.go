package message

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

const rawOK = "From: Billing <billing@acme.example>\r\n" +
	"To: Bob <bob@example.com>\r\n" +
	"Subject: Invoice\r\n" +
	"DKIM-Signature: v=1; a=rsa-sha256; d=acme.example;\r\n" +
	" h=from:to:subject; bh=abc; b=def\r\n" +
	"\r\n" +
	"Hello Bob.\r\n"

func mustParseRaw(t *testing.T, raw string) *Raw {
	t.Helper()
	m, err := ParseRaw([]byte(raw))
	if err != nil {
		t.Fatalf("ParseRaw: %v", err)
	}
	return m
}

// Every rule of a raw message refuses with its field and code, and only
// with those.
func TestParseSubmissionRefuses(t *testing.T) {
	body := "\r\nHello.\r\n"
	from := "From: a@acme.example\r\n"
	cases := []struct {
		name, raw   string
		rcpts       []string
		field, code string
	}{
		{"no From", "To: b@example.com\r\n" + body, nil, "header.From", codeRequired},
		{"From unparsable", "From: <not an address\r\n" + body, nil, "header.From", codeInvalidAddress},
		{"From two mailboxes", "From: a@acme.example, b@acme.example\r\n" + body, nil, "header.From", codeInvalidAddress},
		{"From empty", "From: \r\n" + body, nil, "header.From", codeInvalidAddress},
		{"From address literal", "From: a@[127.0.0.1]\r\n" + body, nil, "header.From", codeInvalidAddress},
		{"Reply-To unparsable", from + "Reply-To: @@\r\n" + body, nil, "header.Reply-To", codeInvalidAddress},
		{"two From fields", from + "From: b@acme.example\r\n" + body, nil, "header.From", codeDuplicateHeader},
		{"two Subject fields", from + "Subject: a\r\nsubject: b\r\n" + body, nil, "header.Subject", codeDuplicateHeader},
		{"bad Message-ID", from + "Message-ID: no-brackets@x\r\n" + body, nil, "header.Message-ID", "invalid_message_id"},
		{"header line over 998", from + "X-Long: " + strings.Repeat("a", 991) + "\r\n" + body, nil, "header.X-Long", codeTooLong},
		{"bare LF in header", "From: a@acme.example\nTo: b@example.com\r\n" + body, nil, "header", codeInvalidCharacters},
		{"bare CR in header", "From: a@acme.example\rBcc: x@evil.example\r\n" + body, nil, "header", codeInvalidCharacters},
		{"NUL in header", "From: a@acme.example\r\nSubject: a\x00b\r\n" + body, nil, "header", codeInvalidCharacters},
		{"Latin-1 in header", from + "Subject: caf\xe9\r\n" + body, nil, "header", codeInvalidCharacters},
		{"not a field", from + "this is no field\r\n" + body, nil, "header", codeMalformedHeader},
		{"space in a field name", from + "X Bad: v\r\n" + body, nil, "header", codeMalformedHeader},
		{"continuation first", " folded: x\r\n" + from + body, nil, "header", codeMalformedHeader},
		{"header without CRLF", "From: a@acme.example", nil, "header", codeMalformedHeader},
		{"bare LF in body", from + "\r\nline\nsmuggled\r\n", nil, "body", codeInvalidCharacters},
		{"bare CR in body", from + "\r\nline\rmore\r\n", nil, "body", codeInvalidCharacters},
		{"NUL in body", from + "\r\nli\x00ne\r\n", nil, "body", codeInvalidCharacters},
		{"body line over 998", from + "\r\n" + strings.Repeat("b", 999) + "\r\n", nil, "body", codeTooLong},
		{"no recipient", from + body, []string{}, "recipients", codeRequired},
		{"bad recipient", from + body, []string{"b@example.com", "Bob <c@example.com>"}, "recipients[1]", codeInvalidEmail},
		{"recipient address literal", from + body, []string{"b@[10.0.0.1]"}, "recipients[0]", codeAddressLiteral},
		{"recipient with CRLF", from + body, []string{"b@example.com\r\nRCPT TO:<x@y.z>"}, "recipients[0]", codeInvalidCharacters},
		{"too many recipients", from + body, []string{"a@example.com", "b@example.com", "c@example.com"}, "recipients", codeTooManyRecipients},
		{"too large", from + body + strings.Repeat("x\r\n", 400), nil, "message", codeTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rcpts := c.rcpts
			if rcpts == nil {
				rcpts = []string{"b@example.com"}
			}
			_, err := ParseSubmission("acme", rcpts, []byte(c.raw), Limits{MaxRecipients: 2, MaxMessageBytes: 1100})
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("err %v, want a *ValidationError", err)
			}
			if len(verr.Fields) != 1 || verr.Fields[0].Field != c.field || verr.Fields[0].Code != c.code {
				t.Errorf("fields %+v, want one %s %s", verr.Fields, c.field, c.code)
			}
		})
	}
}

func TestParseSubmissionTakes(t *testing.T) {
	raw := "From: =?utf-8?q?Caf=C3=A9?= <billing@acme.example>\r\n" +
		"Reply-To: Desk <desk@acme.example>, other@acme.example\r\n" +
		"Message-ID: <1@acme.example>\r\n" +
		"Subject: =?iso-8859-1?q?caf=E9?=\r\n" +
		"X-Name: Café\r\n" + // UTF-8 in the header (RFC 6532)
		"\r\n" +
		"Grüße\r\n" +
		"last line without CRLF"
	sub, err := ParseSubmission("acme", []string{"b@example.com", "B@example.com", "c@example.com"}, []byte(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if sub.From != (Address{Name: "Café", Email: "billing@acme.example"}) || len(sub.ReplyTo) != 2 ||
		sub.ReplyTo[0] != (Address{Name: "Desk", Email: "desk@acme.example"}) {
		t.Errorf("From %+v, Reply-To %+v", sub.From, sub.ReplyTo)
	}
	if sub.MessageID != "<1@acme.example>" || sub.HasDate || !sub.EightBit || !sub.UTF8 {
		t.Errorf("Message-ID %q, date %v, 8bit %v, utf8 %v", sub.MessageID, sub.HasDate, sub.EightBit, sub.UTF8)
	}
	if got := strings.Join(sub.Recipients, ","); got != "b@example.com,c@example.com" {
		t.Errorf("recipients %s, want each once as first spelled", got)
	}
	plain := mustParseRaw(t, rawOK)
	if plain.EightBit || plain.UTF8 {
		t.Errorf("an ASCII message is 8bit %v, utf8 %v", plain.EightBit, plain.UTF8)
	}
}

// Bytes changes only what the edit says, and leaves every other byte.
func TestRawBytes(t *testing.T) {
	date := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m := mustParseRaw(t, rawOK)
	if got := string(m.Bytes(Edit{})); got != rawOK {
		t.Errorf("without an edit:\n%q\nwant it as written", got)
	}
	got := string(m.Bytes(Edit{MessageID: "<new@acme.example>", Date: date, From: &Address{Name: "Other", Email: "BILLING@acme.example"}}))
	head, rest, _ := strings.Cut(rawOK, "\r\n\r\n")
	want := head + "\r\nMessage-ID: <new@acme.example>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\n" + rest
	if got != want {
		t.Errorf("adding Message-ID and Date:\n%q\nwant\n%q", got, want)
	}

	withAll := "From: a@acme.example\r\nBcc: secret@example.com,\r\n more@example.com\r\nMessage-ID: <x@y>\r\nResent-Bcc: secret@example.com\r\n" +
		"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nSubject: s\r\n\r\nbody\r\n"
	m = mustParseRaw(t, withAll)
	got = string(m.Bytes(Edit{MessageID: "<other@y>", Date: date.Add(time.Hour),
		From:    &Address{Name: "Acme via Platform", Email: "no-reply@platform.example"},
		ReplyTo: []Address{{Email: "a@acme.example"}}}))
	want = "From: \"Acme via Platform\" <no-reply@platform.example>\r\nMessage-ID: <x@y>\r\n" +
		"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nSubject: s\r\nReply-To: <a@acme.example>\r\n\r\nbody\r\n"
	if got != want {
		t.Errorf("relay edit:\n%q\nwant\n%q", got, want)
	}
	if bytes.Contains([]byte(got), []byte("secret")) {
		t.Error("the Bcc field is still there")
	}

	m = mustParseRaw(t, "From: a@acme.example\r\nReply-To: r@acme.example\r\n")
	if got := string(m.Bytes(Edit{ReplyTo: []Address{{Email: "x@acme.example"}}})); got != "From: a@acme.example\r\nReply-To: r@acme.example\r\n" {
		t.Errorf("a message's own Reply-To is kept, and one without a body stays without: %q", got)
	}
}

// FuzzParseRaw: ParseRaw never panics, and whatever it takes comes out of
// Bytes as it went in but for its Bcc fields, and the fields an edit adds
// or replaces leave a message ParseRaw takes again, with the edit's From,
// Message-ID and Date in it.
func FuzzParseRaw(f *testing.F) {
	f.Add([]byte(rawOK))
	f.Add([]byte("From: a@acme.example\r\nBcc: b@x.example,\r\n c@x.example\r\nSubject: s\r\n\r\n8-bit \xc3\xa9\r\n"))
	f.Add([]byte("From: a@acme.example\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseRaw(raw)
		if err != nil {
			return
		}
		var noBcc []byte
		for _, fl := range m.fields {
			if !blind(fl.name) {
				noBcc = append(noBcc, fl.raw...)
			}
		}
		noBcc = append(noBcc, m.rest...)
		if got := m.Bytes(Edit{}); !bytes.Equal(got, noBcc) {
			t.Fatalf("Bytes without an edit:\n%q\nwant\n%q", got, noBcc)
		}
		from := Address{Name: "Platform via Ä", Email: "no-reply@platform.example"}
		edited := m.Bytes(Edit{MessageID: "<e@platform.example>", Date: time.Unix(0, 0), From: &from,
			ReplyTo: []Address{{Email: "r@acme.example"}}})
		again, err := ParseRaw(edited)
		if err != nil {
			t.Fatalf("the edited message does not parse: %v\n%q", err, edited)
		}
		if again.From.Email != from.Email && !strings.EqualFold(m.From.Email, from.Email) || again.MessageID == "" || !again.HasDate {
			t.Fatalf("edited: From %+v, Message-ID %q, Date %v", again.From, again.MessageID, again.HasDate)
		}
	})
}
