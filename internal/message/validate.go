package message

import (
	"mime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/outbound-mail/outbound/internal/validation"
)

// Stable codes of FieldError.Code.
const (
	codeRequired           = "required"
	codeInvalidEmail       = "invalid_email"
	codeAddressLiteral     = "address_literal"
	codeInvalidCharacters  = "invalid_characters"
	codeReservedHeader     = "reserved_header"
	codeInvalidHeaderName  = "invalid_header_name"
	codeInvalidBase64      = "invalid_base64"
	codeTooManyRecipients  = "too_many_recipients"
	codeTooLarge           = "too_large"
	codeTooLong            = "too_long"
	codeTooMany            = "too_many"
	codeInvalidContentType = "invalid_content_type"
	codeInvalidTenantID    = "invalid_tenant_id"
)

// Limits on single fields, in bytes unless said otherwise.
const (
	maxTenantID       = 64
	maxEmail          = 254 // RFC 5321 section 4.5.3.1.3: a path is 256 with its brackets
	maxName           = 256
	maxSubject        = maxLineOctets // RFC 5322 section 2.1.1
	maxHeaderName     = 76
	maxHeaderValue    = maxLineOctets
	maxFilename       = 255
	maxContentType    = 255
	maxFormattedType  = 900 // the normalised Content-Type value, so its line stays under 998
	maxTags           = 20  // count
	maxTag            = 64
	maxMetadata       = 50 // count
	maxMetadataKey    = 64
	maxMetadataValue  = 1024
	defaultAttachType = "application/octet-stream"
)

// reservedHeaders are the fields Compose writes itself or that only a
// relay or the receiving side may add (RFC 5322 section 3.6, RFC 5321
// section 4.4, RFC 8601 Authentication-Results, and the delivery fields
// MTAs add: Delivered-To, X-Original-To). A caller setting them could
// forge a trace or an authentication verdict. Compared case-insensitively.
var reservedHeaders = [...]string{
	"From", "To", "Cc", "Bcc", "Reply-To", "Subject", "Date", "Message-ID",
	"MIME-Version", "Sender", "Return-Path", "Authentication-Results",
	"Delivered-To", "X-Original-To",
}

// reservedPrefixes are whole families of reserved fields: Content-* (RFC
// 2045, written by Compose), Resent-* (RFC 5322 section 3.6.6: only a
// resending agent), Received and Received-SPF (trace fields, RFC 5321
// section 4.4, RFC 7208), DKIM-* (RFC 6376) and ARC-* (RFC 8617), the
// signatures and seals of the servers on the way.
var reservedPrefixes = [...]string{"Content-", "Resent-", "Received", "DKIM-", "ARC-"}

// Validate checks the request against every rule and lim (zero fields take
// the defaults), and returns nil or a *ValidationError listing every bad
// field. It decodes attachment content without keeping it and estimates the
// composed size from lengths, so it is cheap enough for every POST. An
// HTML-only request is measured with the text part Compose will generate
// (withTextAlternative).
func (r *Request) Validate(lim Limits) error {
	r = r.withTextAlternative()
	lim = lim.withDefaults()
	var errs ValidationError
	v := checker{errs: &errs, full: true}
	v.request(r)
	r.checkRecipientCount(&errs, lim.MaxRecipients)
	if size := r.sizeBound(v.text, v.html, v.attachments); size > lim.MaxMessageBytes {
		field := "text"
		if len(r.Attachments) > 0 {
			field = "attachments"
		}
		errs.Add(field, codeTooLarge, "the composed message would be up to "+strconv.FormatInt(size, 10)+
			" bytes, more than the limit of "+strconv.FormatInt(lim.MaxMessageBytes, 10))
	}
	return errs.Err()
}

// checker walks a request once, recording bad fields and what the size
// estimate needs. Without full it skips decoding attachment content: the
// header-safety check Compose runs.
type checker struct {
	errs        *ValidationError
	full        bool
	text, html  textStats
	attachments int64 // upper bound of the attachment parts, boundaries excluded
}

func (v *checker) request(r *Request) {
	switch {
	case r.TenantID == "":
		v.errs.Add("tenant_id", codeRequired, "the tenant the message is sent for is required")
	case !validTenantID(r.TenantID):
		v.errs.Add("tenant_id", codeInvalidTenantID,
			"must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if r.From != nil {
		v.address("from", -1, *r.From)
	}
	v.addresses("to", r.To)
	v.addresses("cc", r.Cc)
	v.addresses("bcc", r.Bcc)
	if len(r.To)+len(r.Cc)+len(r.Bcc) == 0 {
		v.errs.Add("to", codeRequired, "at least one recipient in to, cc or bcc is required")
	}
	v.addresses("reply_to", r.ReplyTo)
	switch {
	case badText(r.Subject):
		v.errs.Add("subject", codeInvalidCharacters, msgInvalidCharacters)
	case len(r.Subject) > maxSubject:
		v.errs.Add("subject", codeTooLong, tooLong(maxSubject))
	}
	v.bodies(r)
	for i, a := range r.Attachments {
		v.attachment(i, a)
	}
	v.headers(r.Headers)
	v.tags(r.Tags)
	v.metadata(r.Metadata)
}

const msgInvalidCharacters = "must be valid UTF-8 without control characters such as CR, LF or NUL"

func tooLong(n int) string { return "must be at most " + strconv.Itoa(n) + " bytes" }

// badText reports a value that must not reach a header: a control
// character other than TAB (CR and LF above all: header injection), DEL,
// or invalid UTF-8.
func badText(s string) bool {
	return validation.HasControl(s) || !utf8.ValidString(s)
}

// validTenantID reports whether id matches ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$.
func validTenantID(id string) bool {
	if len(id) == 0 || len(id) > maxTenantID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// path builds a JSON path such as "to[2].email"; i < 0 leaves out the index.
// It is only called for a bad field, so a valid request builds none.
func path(list string, i int, field string) string {
	if i < 0 {
		return list + field
	}
	return list + "[" + strconv.Itoa(i) + "]" + field
}

func (v *checker) addresses(list string, as []Address) {
	for i, a := range as {
		v.address(list, i, a)
	}
}

// address checks one mailbox: a bare addr-spec that net/mail parses back to
// itself (RFC 5322 section 3.4.1) and a display name without controls.
func (v *checker) address(list string, i int, a Address) {
	switch {
	case a.Email == "":
		v.errs.Add(path(list, i, ".email"), codeRequired, "an email address is required")
	case badText(a.Email):
		v.errs.Add(path(list, i, ".email"), codeInvalidCharacters, msgInvalidCharacters)
	case len(a.Email) > maxEmail:
		v.errs.Add(path(list, i, ".email"), codeTooLong, tooLong(maxEmail))
	case isAddressLiteral(a.Email):
		v.errs.Add(path(list, i, ".email"), codeAddressLiteral,
			"must have a domain name, not an address literal such as [127.0.0.1]")
	case !validation.IsEmail(a.Email):
		v.errs.Add(path(list, i, ".email"), codeInvalidEmail,
			"must be a bare address such as name@example.com, without display name or angle brackets")
	}
	switch {
	case badText(a.Name):
		v.errs.Add(path(list, i, ".name"), codeInvalidCharacters, msgInvalidCharacters)
	case len(a.Name) > maxName:
		v.errs.Add(path(list, i, ".name"), codeTooLong, tooLong(maxName))
	}
}

// checkRecipientCount refuses more than max envelope recipients. The
// de-duplicated count is only worked out when the raw count is over.
func (r *Request) checkRecipientCount(errs *ValidationError, max int) {
	if len(r.To)+len(r.Cc)+len(r.Bcc) <= max {
		return
	}
	if n := r.RecipientCount(); n > max {
		errs.Add("to", codeTooManyRecipients, strconv.Itoa(n)+" distinct recipients in to, cc and bcc; at most "+
			strconv.Itoa(max)+" are allowed")
	}
}

func (v *checker) bodies(r *Request) {
	if r.Text == "" && r.HTML == "" {
		v.errs.Add("text", codeRequired, "text or html is required")
	}
	v.text, v.html = scanText(r.Text), scanText(r.HTML)
	if v.text.nul {
		v.errs.Add("text", codeInvalidCharacters, "must not contain NUL")
	}
	if v.html.nul {
		v.errs.Add("html", codeInvalidCharacters, "must not contain NUL")
	}
}

func (v *checker) attachment(i int, a Attachment) {
	switch {
	case a.Filename == "":
		v.errs.Add(path("attachments", i, ".filename"), codeRequired, "a file name is required")
	case badText(a.Filename):
		v.errs.Add(path("attachments", i, ".filename"), codeInvalidCharacters, msgInvalidCharacters)
	case len(a.Filename) > maxFilename:
		v.errs.Add(path("attachments", i, ".filename"), codeTooLong, tooLong(maxFilename))
	}
	ct, ctErr := formatContentType(a.ContentType)
	switch ctErr {
	case "":
	case codeInvalidCharacters:
		v.errs.Add(path("attachments", i, ".content_type"), ctErr, msgInvalidCharacters)
	case codeTooLong:
		v.errs.Add(path("attachments", i, ".content_type"), ctErr, tooLong(maxContentType))
	default:
		v.errs.Add(path("attachments", i, ".content_type"), ctErr,
			"must be a media type such as application/pdf (RFC 2045), not multipart/* or message/*")
	}
	decoded := int64(len(a.Content)) / 4 * 3 // near enough when the content is bad
	if v.full {
		n, err := base64DecodedLen(a.Content)
		if err != nil {
			v.errs.Add(path("attachments", i, ".content"), codeInvalidBase64,
				"must be standard base64 with padding (RFC 4648); line breaks and spaces are ignored")
		} else {
			decoded = n
		}
	}
	v.attachments += attachmentBound(a.Filename, len(ct), decoded)
}

// formatContentType normalises an attachment's media type with
// mime.FormatMediaType (non-ASCII parameters come out in RFC 2231 form),
// defaulting to application/octet-stream. A name parameter is dropped: the
// attachment's filename supplies it, so the two cannot disagree. It
// refuses composite types:
// multipart/* and message/* may not be base64-encoded (RFC 2045 section
// 6.4, RFC 2046 section 5.2.1). The second result is a FieldError code,
// empty when the type is good.
func formatContentType(ct string) (string, string) {
	if ct == "" {
		return defaultAttachType, ""
	}
	if badText(ct) {
		return "", codeInvalidCharacters
	}
	if len(ct) > maxContentType {
		return "", codeTooLong
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") ||
		strings.HasPrefix(mt, "multipart/") || strings.HasPrefix(mt, "message/") {
		return "", codeInvalidContentType
	}
	delete(params, "name")
	f := mime.FormatMediaType(mt, params)
	if f == "" || len(f) > maxFormattedType {
		return "", codeInvalidContentType
	}
	return f, ""
}

// validFieldName reports an RFC 5322 field-name (section 3.6.8): printable
// US-ASCII (33-126) except ':'.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// isAddressLiteral reports an address whose domain is an address literal
// ("x@[127.0.0.1]", "x@[IPv6:::1]", RFC 5321 section 4.1.3). Mail to it
// goes to that host directly, without MX lookup, so a caller could point
// the relay at any address, internal ones included.
func isAddressLiteral(email string) bool {
	at := strings.LastIndexByte(email, '@')
	return at >= 0 && strings.HasPrefix(email[at+1:], "[")
}

// reservedHeader reports whether the caller may not set the named field.
func reservedHeader(name string) bool {
	for _, p := range reservedPrefixes {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	for _, r := range reservedHeaders {
		if strings.EqualFold(name, r) {
			return true
		}
	}
	return false
}

// headers checks the caller's own header fields. Map order is random, so
// the errors found here are sorted by field for a stable answer.
func (v *checker) headers(hs map[string]string) {
	start := len(v.errs.Fields)
	for name, value := range hs {
		add := func(code, msg string) { v.errs.Add("headers."+name, code, msg) }
		switch {
		case name == "":
			add(codeInvalidHeaderName, "a header name is required")
		case badText(name):
			add(codeInvalidCharacters, msgInvalidCharacters)
		case !validFieldName(name):
			add(codeInvalidHeaderName, "must be printable ASCII without spaces or ':' (RFC 5322 section 3.6.8)")
		case len(name) > maxHeaderName:
			add(codeTooLong, "a header name must be at most "+strconv.Itoa(maxHeaderName)+" bytes")
		case reservedHeader(name):
			add(codeReservedHeader, "is set by the service and may not be given")
		}
		switch {
		case badText(value):
			add(codeInvalidCharacters, msgInvalidCharacters)
		case len(value) > maxHeaderValue:
			add(codeTooLong, tooLong(maxHeaderValue))
		}
	}
	sortFields(v.errs.Fields[start:])
}

func (v *checker) tags(tags []string) {
	if len(tags) > maxTags {
		v.errs.Add("tags", codeTooMany, "at most "+strconv.Itoa(maxTags)+" tags are allowed")
	}
	for i, t := range tags {
		switch {
		case t == "":
			v.errs.Add(path("tags", i, ""), codeRequired, "a tag must not be empty")
		case badText(t):
			v.errs.Add(path("tags", i, ""), codeInvalidCharacters, msgInvalidCharacters)
		case len(t) > maxTag:
			v.errs.Add(path("tags", i, ""), codeTooLong, tooLong(maxTag))
		}
	}
}

func (v *checker) metadata(md map[string]string) {
	if len(md) > maxMetadata {
		v.errs.Add("metadata", codeTooMany, "at most "+strconv.Itoa(maxMetadata)+" metadata keys are allowed")
	}
	start := len(v.errs.Fields)
	for key, value := range md {
		add := func(code, msg string) { v.errs.Add("metadata."+key, code, msg) }
		switch {
		case key == "":
			v.errs.Add("metadata", codeRequired, "a metadata key must not be empty")
		case badText(key):
			add(codeInvalidCharacters, msgInvalidCharacters)
		case len(key) > maxMetadataKey:
			add(codeTooLong, "a metadata key must be at most "+strconv.Itoa(maxMetadataKey)+" bytes")
		}
		switch {
		case badText(value):
			add(codeInvalidCharacters, msgInvalidCharacters)
		case len(value) > maxMetadataValue:
			add(codeTooLong, tooLong(maxMetadataValue))
		}
	}
	sortFields(v.errs.Fields[start:])
}

func sortFields(fs []FieldError) {
	slices.SortStableFunc(fs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
}
