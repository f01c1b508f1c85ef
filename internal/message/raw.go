package message

import (
	"bytes"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/outbound-mail/outbound/internal/validation"
)

// A raw message is one a client wrote itself, handed over by SMTP
// submission: Outbound sends it as written, byte for byte, and changes
// only the header fields it must (see Raw.Bytes), so that a signature the
// client made over the rest (DKIM, RFC 6376) survives. It is checked as
// strictly as the JSON request, since what it holds goes to the next
// server unaltered: a header that is not RFC 5322 (a line over 998
// octets, a bare CR or LF, a NUL), a From that does not parse, or a field
// RFC 5322 section 3.6 allows once given twice is refused, never repaired.

// Field codes of raw messages (FieldError.Code), besides the shared ones.
const (
	codeMalformedHeader = "malformed_header"
	codeInvalidAddress  = "invalid_address"
	codeDuplicateHeader = "duplicate_header"
)

// onceFields are the fields RFC 5322 section 3.6 allows at most once (Bcc
// too, but Bcc is removed before sending). Two From fields would let two
// readers show two senders.
var onceFields = [...]string{"Date", "From", "Sender", "Reply-To", "To", "Cc", "Message-ID", "In-Reply-To",
	"References", "Subject"}

// maxRawErrors bounds the fields a refusal lists: a binary file sent as a
// message would otherwise list a complaint per line.
const maxRawErrors = 10

// Raw is a parsed raw message: its header fields as written, the part
// after the header, and what routing and sending read of them.
type Raw struct {
	raw    []byte
	fields []rawField
	rest   []byte // from the empty line ending the header (included) to the end; nil when there is none

	From      Address   // the From field's one mailbox
	ReplyTo   []Address // the Reply-To field's, if any
	MessageID string    // the Message-ID field's value, "" when there is none
	HasDate   bool
	// EightBit is set when the body holds octets above 127: the next
	// server must offer 8BITMIME (RFC 6152). UTF8 is set when the header
	// does (RFC 6532): it must offer SMTPUTF8 (RFC 6531).
	EightBit, UTF8 bool
}

// rawField is one header field: its name as written and its bytes, name
// to final CRLF, continuation lines included.
type rawField struct {
	name string
	raw  []byte
}

// value is the field's unfolded value (RFC 5322 section 2.2.3), trimmed.
func (f rawField) value() string {
	v := f.raw[len(f.name):]
	v = v[bytes.IndexByte(v, ':')+1:]
	return strings.TrimSpace(strings.ReplaceAll(string(v), "\r\n", ""))
}

// Submission is a raw message with its envelope, checked for accepting.
type Submission struct {
	*Raw
	Recipients []string // the envelope's, each once (recipientKey), as first spelled
	maxBytes   int64
}

// Stored is the submission as it is kept until it is sent: with a
// Message-ID (messageID) and a Date (date) where it has none, without its
// Bcc fields (see Bytes). It is a *ValidationError when the fields added
// take it past the size limit.
func (s *Submission) Stored(messageID string, date time.Time) ([]byte, error) {
	b := s.Bytes(Edit{MessageID: messageID, Date: date})
	if int64(len(b)) > s.maxBytes {
		var errs ValidationError
		errs.Add("message", codeTooLarge, "with the Message-ID and Date fields added the message is "+strconv.Itoa(len(b))+
			" bytes, more than the limit of "+strconv.FormatInt(s.maxBytes, 10))
		return nil, &errs
	}
	return b, nil
}

// ParseSubmission checks a message handed over by SMTP for tenantID: the
// envelope recipients (RCPT TO) against lim.MaxRecipients, the message's
// size against lim.MaxMessageBytes and the message itself (ParseRaw). Its
// error is a *ValidationError listing what is wrong, with the field paths
// "tenant_id", "recipients[i]", "message", "header", "header.<Name>" and
// "body".
func ParseSubmission(tenantID string, rcpts []string, raw []byte, lim Limits) (*Submission, error) {
	lim = lim.withDefaults()
	var errs ValidationError
	switch {
	case tenantID == "":
		errs.Add("tenant_id", codeRequired, "the tenant the message is sent for is required")
	case !validTenantID(tenantID):
		errs.Add("tenant_id", codeInvalidTenantID, "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if int64(len(raw)) > lim.MaxMessageBytes {
		// Nothing else is read of a message too large to take.
		errs.Add("message", codeTooLarge, "the message is "+strconv.Itoa(len(raw))+" bytes, more than the limit of "+
			strconv.FormatInt(lim.MaxMessageBytes, 10))
		return nil, &errs
	}
	sub := &Submission{Recipients: envelope(&errs, rcpts, lim.MaxRecipients), maxBytes: lim.MaxMessageBytes}
	sub.Raw = parseRaw(&errs, raw)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return sub, nil
}

// envelope checks the RCPT TO addresses and returns them each once.
func envelope(errs *ValidationError, rcpts []string, max int) []string {
	if len(rcpts) == 0 {
		errs.Add("recipients", codeRequired, "at least one recipient (RCPT TO) is required")
	}
	out := make([]string, 0, len(rcpts))
	seen := make(map[string]struct{}, len(rcpts))
	for i, r := range rcpts {
		switch {
		case badText(r):
			errs.Add(path("recipients", i, ""), codeInvalidCharacters, msgInvalidCharacters)
			continue
		case isAddressLiteral(r):
			errs.Add(path("recipients", i, ""), codeAddressLiteral,
				"must have a domain name, not an address literal such as [127.0.0.1]")
			continue
		case !validation.IsEmail(r):
			errs.Add(path("recipients", i, ""), codeInvalidEmail, "must be an address such as name@example.com")
			continue
		}
		if _, dup := seen[recipientKey(r)]; !dup {
			seen[recipientKey(r)] = struct{}{}
			out = append(out, r)
		}
	}
	if len(out) > max {
		errs.Add("recipients", codeTooManyRecipients, strconv.Itoa(len(out))+" distinct recipients; at most "+
			strconv.Itoa(max)+" are allowed")
	}
	return out
}

// ParseRaw checks and parses a raw message (RFC 5322, CRLF line ends,
// without SMTP's dot-stuffing): every header line a field or the
// continuation of one, at most 998 octets, without NUL or a CR or LF
// outside a CRLF, UTF-8 where not ASCII; one From mailbox; addresses that
// parse in From and Reply-To; a well-formed Message-ID when there is one;
// no field of onceFields twice. The body may hold any octet but NUL, CR
// and LF outside CRLF, in lines of at most 998 octets. The error is a
// *ValidationError. The Raw keeps raw, which must not change.
func ParseRaw(raw []byte) (*Raw, error) {
	var errs ValidationError
	m := parseRaw(&errs, raw)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

func parseRaw(errs *ValidationError, raw []byte) *Raw {
	m := &Raw{raw: raw}
	start := len(errs.Fields)
	full := func() bool { return len(errs.Fields)-start >= maxRawErrors }
	end := m.splitHeader(errs, full)
	if !full() {
		m.EightBit = scanBody(errs, raw[end:])
	}
	if len(errs.Fields) > start {
		return m
	}
	m.readFields(errs)
	return m
}

// splitHeader finds the header's fields and where it ends, and checks its
// lines. It returns the offset of the body's first octet.
func (m *Raw) splitHeader(errs *ValidationError, full func() bool) int {
	raw := m.raw
	at, n := 0, 0
	for at < len(raw) && !full() {
		n++
		nl := bytes.IndexByte(raw[at:], '\n')
		if nl < 0 {
			errs.Add("header", codeMalformedHeader, "line "+strconv.Itoa(n)+" of the header does not end with CRLF")
			return len(raw)
		}
		line := raw[at : at+nl+1]
		if len(line) == 2 && line[0] == '\r' {
			m.rest = raw[at:]
			return at + 2
		}
		continued := line[0] == ' ' || line[0] == '\t'
		name, named := "", false
		if !continued {
			name, named = fieldName(line)
		}
		field := "header"
		switch {
		case named:
			field = "header." + name
		case continued && len(m.fields) > 0:
			field = "header." + m.fields[len(m.fields)-1].name
		}
		switch {
		case len(line) < 2 || line[len(line)-2] != '\r':
			errs.Add("header", codeInvalidCharacters, "line "+strconv.Itoa(n)+" of the header ends with a bare LF: lines end with CRLF")
			at += nl + 1
			continue
		case bytes.IndexByte(line[:len(line)-2], '\r') >= 0:
			errs.Add("header", codeInvalidCharacters, "line "+strconv.Itoa(n)+" of the header holds a bare CR")
		case bytes.IndexByte(line, 0) >= 0:
			errs.Add("header", codeInvalidCharacters, "line "+strconv.Itoa(n)+" of the header holds a NUL")
		case !utf8.Valid(line):
			errs.Add("header", codeInvalidCharacters, "line "+strconv.Itoa(n)+" of the header is neither ASCII nor UTF-8 (RFC 6532)")
		case len(line)-2 > maxLineOctets:
			errs.Add(field, codeTooLong, "line "+strconv.Itoa(n)+" of the header is "+strconv.Itoa(len(line)-2)+
				" octets; at most 998 (RFC 5322 section 2.1.1)")
		}
		if continued {
			if len(m.fields) == 0 {
				errs.Add("header", codeMalformedHeader, "the header begins with a continuation line")
			} else {
				f := &m.fields[len(m.fields)-1]
				f.raw = f.raw[:len(f.raw)+len(line)]
			}
		} else {
			if !named {
				errs.Add("header", codeMalformedHeader, "line "+strconv.Itoa(n)+
					" of the header is not a field (name, colon, value) nor its continuation, and no empty line ends the header before it")
			}
			m.fields = append(m.fields, rawField{name: name, raw: line})
		}
		if !m.UTF8 && !isASCII(line) {
			m.UTF8 = true
		}
		at += nl + 1
	}
	return at // a message that is all header
}

// fieldName is the name of the field line begins, as written: printable
// ASCII but ':' (RFC 5322 section 3.6.8), then the colon, with the
// spaces the obsolete syntax allows before it (section 4.5).
func fieldName(line []byte) (string, bool) {
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return "", false
	}
	name := strings.TrimRight(string(line[:colon]), " \t")
	return name, validFieldName(name)
}

// scanBody checks the body's lines and reports whether it holds octets
// above 127.
func scanBody(errs *ValidationError, body []byte) (eightBit bool) {
	n := 0
	for len(body) > 0 {
		n++
		nl := bytes.IndexByte(body, '\n')
		line := body
		if nl >= 0 {
			line = body[:nl+1]
		}
		text := line
		switch {
		case nl < 0: // the last line: DATA ends it with CRLF
		case len(line) < 2 || line[len(line)-2] != '\r':
			errs.Add("body", codeInvalidCharacters, "line "+strconv.Itoa(n)+" of the body ends with a bare LF: lines end with CRLF")
			return eightBit
		default:
			text = line[:len(line)-2]
		}
		switch {
		case bytes.IndexByte(text, '\r') >= 0:
			errs.Add("body", codeInvalidCharacters, "line "+strconv.Itoa(n)+" of the body holds a bare CR")
			return eightBit
		case bytes.IndexByte(text, 0) >= 0:
			errs.Add("body", codeInvalidCharacters, "line "+strconv.Itoa(n)+" of the body holds a NUL")
			return eightBit
		case len(text) > maxLineOctets:
			errs.Add("body", codeTooLong, "line "+strconv.Itoa(n)+" of the body is "+strconv.Itoa(len(text))+
				" octets; at most 998 (RFC 5322 section 2.1.1)")
			return eightBit
		}
		if !eightBit && !isASCII(text) {
			eightBit = true
		}
		body = body[len(line):]
	}
	return eightBit
}

// addressParser decodes RFC 2047 display names in any charset go-message
// knows, not only UTF-8 and Latin-1.
var addressParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader}}

// readFields reads what routing needs from the fields and checks them.
func (m *Raw) readFields(errs *ValidationError) {
	seen := map[string]bool{}
	var from *rawField
	for i := range m.fields {
		f := &m.fields[i]
		for _, once := range onceFields {
			if !strings.EqualFold(f.name, once) {
				continue
			}
			if seen[once] {
				errs.Add("header."+once, codeDuplicateHeader, "the field is given more than once; RFC 5322 section 3.6 allows it once")
			}
			seen[once] = true
		}
		switch {
		case strings.EqualFold(f.name, "From"):
			from = f
		case strings.EqualFold(f.name, "Reply-To"):
			m.ReplyTo = m.addresses(errs, "header.Reply-To", f.value())
		case strings.EqualFold(f.name, "Message-ID"):
			m.MessageID = f.value()
			if !validMessageID(m.MessageID) {
				errs.Add("header.Message-ID", "invalid_message_id",
					`must be "<id-left@id-right>" without spaces, comments or controls, at most `+strconv.Itoa(maxMessageID)+" bytes")
			}
		case strings.EqualFold(f.name, "Date"):
			m.HasDate = true
		}
	}
	if from == nil {
		errs.Add("header.From", codeRequired, "a From field is required (RFC 5322 section 3.6.2)")
		return
	}
	list := m.addresses(errs, "header.From", from.value())
	switch {
	case len(list) == 1:
		m.From = list[0]
	case len(list) > 1:
		errs.Add("header.From", codeInvalidAddress, "must name one mailbox, the one the message is sent as")
	case !errs.Has("header.From"):
		errs.Add("header.From", codeRequired, "the From field names no mailbox")
	}
}

// addresses parses an address list field, or records why it does not
// parse.
func (m *Raw) addresses(errs *ValidationError, field, v string) []Address {
	list, err := addressParser.ParseList(v)
	if err != nil {
		errs.Add(field, codeInvalidAddress, "does not parse as RFC 5322 addresses: "+err.Error())
		return nil
	}
	out := make([]Address, 0, len(list))
	for _, a := range list {
		if !validation.IsEmail(a.Address) || isAddressLiteral(a.Address) {
			errs.Add(field, codeInvalidAddress, "holds "+strconv.Quote(a.Address)+", not an address such as name@example.com")
			return nil
		}
		out = append(out, Address{Name: a.Name, Email: a.Address})
	}
	return out
}

// Edit is what the route sets in a raw message's header.
type Edit struct {
	MessageID string    // added when the message has none
	Date      time.Time // added when the message has none
	// From replaces the From field when its address is not the message's
	// (the default relay sends as the platform); the field stays as
	// written when only the display name differs.
	From *Address
	// ReplyTo is added when the message has no Reply-To.
	ReplyTo []Address
}

// Bytes is the message as it is sent: every field as written, in order,
// except any Bcc or Resent-Bcc field (blind recipients are only in the
// envelope, RFC 5322 sections 3.6.3 and 3.6.6) and a From field e
// replaces; the fields e adds after
// the last; then the body as written.
func (m *Raw) Bytes(e Edit) []byte {
	var b bytes.Buffer
	m.Write(&b, e)
	return b.Bytes()
}

// Write writes what Bytes returns to b.
func (m *Raw) Write(b *bytes.Buffer, e Edit) {
	b.Grow(len(m.raw) + 512)
	replaceFrom := e.From != nil && !strings.EqualFold(e.From.Email, m.From.Email)
	for _, f := range m.fields {
		switch {
		case blind(f.name):
		case replaceFrom && strings.EqualFold(f.name, "From"):
			writeAddressField(b, "From", []Address{*e.From})
		default:
			b.Write(f.raw)
		}
	}
	if m.MessageID == "" && e.MessageID != "" {
		b.WriteString("Message-ID: " + e.MessageID + "\r\n")
	}
	if !m.HasDate && !e.Date.IsZero() {
		b.WriteString("Date: " + e.Date.Format(time.RFC1123Z) + "\r\n")
	}
	if len(m.ReplyTo) == 0 && len(e.ReplyTo) > 0 {
		writeAddressField(b, "Reply-To", e.ReplyTo)
	}
	b.Write(m.rest)
}

// blind reports a field that names blind recipients.
func blind(name string) bool {
	return strings.EqualFold(name, "Bcc") || strings.EqualFold(name, "Resent-Bcc")
}

// writeAddressField writes one address field as Compose does (go-message:
// RFC 2047 display names, folded).
func writeAddressField(b *bytes.Buffer, key string, as []Address) {
	var h gomail.Header
	h.SetAddressList(key, mailAddresses(as))
	_ = textproto.WriteHeader(writerOnly{b}, h.Header.Header)
	// WriteHeader ends the header with an empty line; only the field is wanted.
	b.Truncate(b.Len() - 2)
}

// writerOnly hides bytes.Buffer's other methods from WriteHeader.
type writerOnly struct{ b *bytes.Buffer }

func (w writerOnly) Write(p []byte) (int, error) { return w.b.Write(p) }

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
