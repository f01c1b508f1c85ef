package message

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// exampleJSON is the request of the design brief.
const exampleJSON = `{"tenant_id":"acme","from":{"name":"Acme Billing","email":"acme@gmail.com"},` +
	`"to":[{"email":"client@example.com","name":"Client"}],"cc":[],"bcc":[{"email":"archive@example.com"}],` +
	`"reply_to":[{"email":"support@acme.example"}],"subject":"فاتورة رقم 42","text":"plain body",` +
	`"html":"<p>html body</p>","attachments":[{"filename":"invoice-42.pdf","content_type":"application/pdf",` +
	`"content":"JVBERi0xLjQK"}],"headers":{"X-Invoice-Id":"42"},"tags":["invoice"],"metadata":{"invoice_id":"42"}}`

func mustExample(t testing.TB) *Request {
	t.Helper()
	var r Request
	if err := json.Unmarshal([]byte(exampleJSON), &r); err != nil {
		t.Fatalf("example JSON: %v", err)
	}
	return &r
}

// headerFor is what a route would decide for r: its From, its Reply-To.
func headerFor(r *Request) Header {
	from := Address{Name: "Outbound", Email: "no-reply@outbound.example"}
	if r.From != nil {
		from = *r.From
	}
	return Header{
		From:      from,
		ReplyTo:   r.ReplyTo,
		MessageID: NewMessageID(from.Email),
		Date:      time.Date(2025, 3, 14, 15, 9, 26, 0, time.FixedZone("", 3*3600)),
	}
}

func mustCompose(t testing.TB, r *Request, h Header) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Compose(&b, r, h); err != nil {
		t.Fatalf("Compose: %v", err)
	}
	return b.Bytes()
}

// parsed is a composed message read back with go-message.
type parsed struct {
	header      mail.Header
	keys        []string // every top-level field name, in order
	from        []*mail.Address
	to, cc      []*mail.Address
	replyTo     []*mail.Address
	subject     string
	text, html  []string
	attachments []parsedAttachment
}

type parsedAttachment struct {
	filename    string
	contentType string
	data        []byte
}

// parseMessage reads raw back with go-message's mail reader, decoding
// every part.
func parseMessage(raw []byte) (*parsed, error) {
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("CreateReader: %w", err)
	}
	p := &parsed{header: mr.Header}
	for f := mr.Header.Fields(); f.Next(); {
		p.keys = append(p.keys, f.Key())
	}
	for _, a := range []struct {
		key string
		dst *[]*mail.Address
	}{{"From", &p.from}, {"To", &p.to}, {"Cc", &p.cc}, {"Reply-To", &p.replyTo}} {
		if *a.dst, err = mr.Header.AddressList(a.key); err != nil {
			return nil, fmt.Errorf("%s: %w", a.key, err)
		}
	}
	if p.subject, err = mr.Header.Subject(); err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		// An attachment's own charset is not converted: its bytes are read
		// as they are.
		if err != nil && !gomessage.IsUnknownCharset(err) {
			return nil, fmt.Errorf("next part: %w", err)
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			return nil, fmt.Errorf("part body: %w", err)
		}
		switch h := part.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			switch ct {
			case "text/plain":
				p.text = append(p.text, string(body))
			case "text/html":
				p.html = append(p.html, string(body))
			default:
				return nil, fmt.Errorf("unexpected inline part %q", ct)
			}
		case *mail.AttachmentHeader:
			name, err := h.Filename()
			if err != nil {
				return nil, fmt.Errorf("filename: %w", err)
			}
			ct, _, _ := h.ContentType()
			p.attachments = append(p.attachments, parsedAttachment{filename: name, contentType: ct, data: body})
		}
	}
	return p, nil
}

// checkWire checks the raw message's line discipline: every line ends in
// CRLF (the last may end without one), no bare CR or LF, no line longer
// than 998 octets (RFC 5322 section 2.1.1).
func checkWire(raw []byte) error {
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, '\n') >= 0 {
			return fmt.Errorf("line %d has a bare CR or LF: %q", i+1, line)
		}
		if len(line) > maxLineOctets {
			return fmt.Errorf("line %d is %d octets long", i+1, len(line))
		}
	}
	return nil
}

// canonical is s with every line break made CRLF, which is how a text
// part reads back.
func canonical(s string) string {
	var b strings.Builder
	if err := writeCanonical(&b, s); err != nil {
		panic(err)
	}
	return b.String()
}

func emails(as []*mail.Address) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Address
	}
	return out
}

func requestEmails(as []Address) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Email
	}
	return out
}

// headerEmails is what To and Cc should hold: each address once, ignoring
// case, where it first appears.
func headerEmails(r *Request) (to, cc []string) {
	seen := map[string]bool{}
	for _, a := range r.To {
		if !seen[strings.ToLower(a.Email)] {
			seen[strings.ToLower(a.Email)] = true
			to = append(to, a.Email)
		}
	}
	for _, a := range r.Cc {
		if !seen[strings.ToLower(a.Email)] {
			seen[strings.ToLower(a.Email)] = true
			cc = append(cc, a.Email)
		}
	}
	return to, cc
}

// allowedKeys is every top-level field Compose may write for r.
func allowedKeys(r *Request) map[string]bool {
	keys := map[string]bool{}
	for _, k := range []string{"from", "to", "cc", "reply-to", "subject", "date", "message-id",
		"mime-version", "content-type", "content-transfer-encoding"} {
		keys[k] = true
	}
	for name := range r.Headers {
		keys[strings.ToLower(name)] = true
	}
	return keys
}

// checkRoundTrip composes r, reads it back and checks everything a
// recipient would see: the wire format, the size bound, that no field
// other than the expected ones appeared (no header injection), no Bcc,
// the recipients, the subject, and every body and attachment.
func checkRoundTrip(r *Request, h Header) error {
	var b bytes.Buffer
	if err := Compose(&b, r, h); err != nil {
		return fmt.Errorf("Compose: %w", err)
	}
	raw := b.Bytes()
	if err := checkWire(raw); err != nil {
		return err
	}
	if est := estimateSize(r); int64(len(raw)) > est {
		return fmt.Errorf("composed %d bytes, more than the estimate %d", len(raw), est)
	}
	p, err := parseMessage(raw)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, raw)
	}
	allowed := allowedKeys(r)
	seen := map[string]int{}
	for _, k := range p.keys {
		if !allowed[strings.ToLower(k)] {
			return fmt.Errorf("unexpected header field %q", k)
		}
		seen[strings.ToLower(k)]++
	}
	once := []string{"from", "subject", "date", "message-id", "mime-version", "content-type"}
	if len(r.To) > 0 || len(r.Cc) == 0 {
		once = append(once, "to") // the addresses, or the empty group
	} else if seen["to"] != 0 {
		return errors.New("a To field was written for a message with Cc only")
	}
	for _, k := range once {
		if seen[k] != 1 {
			return fmt.Errorf("field %s appears %d times", k, seen[k])
		}
	}
	top, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	if bytes.HasPrefix(bytes.ToLower(top), []byte("bcc:")) || bytes.Contains(bytes.ToLower(top), []byte("\nbcc:")) {
		return errors.New("a Bcc field was written")
	}
	wantTo, wantCc := headerEmails(r)
	if got, want := emails(p.to), wantTo; len(r.To)+len(r.Cc) > 0 && !slices.Equal(got, want) {
		return fmt.Errorf("To = %q, want %q", got, want)
	}
	if got, want := emails(p.cc), wantCc; !slices.Equal(got, want) {
		return fmt.Errorf("Cc = %q, want %q", got, want)
	}
	if got, want := emails(p.from), []string{h.From.Email}; !slices.Equal(got, want) {
		return fmt.Errorf("From = %q, want %q", got, want)
	}
	if got, want := emails(p.replyTo), requestEmails(h.ReplyTo); !slices.Equal(got, want) {
		return fmt.Errorf("Reply-To = %q, want %q", got, want)
	}
	if p.subject != r.Subject {
		return fmt.Errorf("subject = %q, want %q", p.subject, r.Subject)
	}
	if err := checkCustomHeaders(p, r); err != nil {
		return err
	}
	if err := checkBodies(p, r); err != nil {
		return err
	}
	return nil
}

// checkCustomHeaders reads the caller's fields back. A value written as is
// comes back with go-message's unfolding, which turns the whitespace
// around a fold into one space; an encoded one comes back exactly.
func checkCustomHeaders(p *parsed, r *Request) error {
	for name, value := range r.Headers {
		if strings.Contains(value, "=?") {
			continue // a reader decodes what looks like an encoded-word
		}
		want := strings.Join(strings.Fields(value), " ")
		if !foldable(value) {
			want = value
		}
		found := false
		for f := p.header.FieldsByKey(name); f.Next(); {
			got, err := f.Text()
			if err != nil {
				return fmt.Errorf("header %s: %w", name, err)
			}
			if foldable(value) {
				got = strings.Join(strings.Fields(got), " ")
			}
			found = found || got == want
		}
		if !found {
			return fmt.Errorf("header %s: %q not found among %q", name, want, p.header.Values(name))
		}
	}
	return nil
}

func checkBodies(p *parsed, r *Request) error {
	r = r.withTextAlternative() // HTML alone brings a text part
	wantText, wantHTML := 0, 0
	if r.Text != "" {
		wantText = 1
	}
	if r.HTML != "" {
		wantHTML = 1
	}
	if len(p.text) != wantText || len(p.html) != wantHTML {
		return fmt.Errorf("%d text and %d html parts, want %d and %d", len(p.text), len(p.html), wantText, wantHTML)
	}
	if wantText == 1 && p.text[0] != canonical(r.Text) {
		return fmt.Errorf("text = %q, want %q", p.text[0], canonical(r.Text))
	}
	if wantHTML == 1 && p.html[0] != canonical(r.HTML) {
		return fmt.Errorf("html = %q, want %q", p.html[0], canonical(r.HTML))
	}
	if len(p.attachments) != len(r.Attachments) {
		return fmt.Errorf("%d attachments, want %d", len(p.attachments), len(r.Attachments))
	}
	for i, a := range r.Attachments {
		got := p.attachments[i]
		want, err := io.ReadAll(newContentReader(a.Content))
		if err != nil {
			return fmt.Errorf("attachments[%d]: %w", i, err)
		}
		if !bytes.Equal(got.data, want) {
			return fmt.Errorf("attachments[%d]: %d bytes differ from the %d sent", i, len(got.data), len(want))
		}
		// go-message decodes anything that looks like an RFC 2047
		// encoded-word in a filename, whatever form it came in.
		if got.filename != a.Filename && !strings.Contains(a.Filename, "=?") {
			return fmt.Errorf("attachments[%d]: filename %q, want %q", i, got.filename, a.Filename)
		}
	}
	return nil
}
