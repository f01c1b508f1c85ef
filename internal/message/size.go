package message

import (
	"strings"
)

// The composed size is estimated from lengths, never by composing, and the
// estimate is an upper bound: Compose never writes more (a property test
// checks it on random requests). It is the sum of:
//
//   - Fields this package formats itself (Subject, the caller's headers,
//     MIME fields, Content-Disposition, Message-ID, MIME-Version): their
//     exact length, the variable ones worked out by formatting them into a
//     buffer on the stack.
//   - Address fields, written by go-message: key, ": ", value, CRLF, plus
//     2 bytes per fold (a CRLF put before a space). Folding is greedy at 76
//     characters, so two consecutive lines hold at least 70 characters and
//     there are at most 2n/64+2 folds, and never more than the value's
//     spaces; 3 bytes per 900 cover a fold go-message would have to insert
//     into a run without spaces (it cannot happen with valid addresses).
//   - Address values as net/mail formats them: "<email>" (2 more when the
//     local part needs quoting), a display name as a quoted string
//     (2 + escapes) when printable ASCII, else as RFC 2047 encoded-words:
//     Q at most 3 bytes per byte and 13 per word (a word holds at least 52
//     encoded characters), B at most 4/3 per byte and 17 per word (a word
//     holds at least 42 bytes).
//   - Fields the route decides: From is any one valid address (name of at
//     most 256 bytes, email of at most 254), Reply-To is r.ReplyTo plus at
//     most one more such address, Message-ID has at most maxMessageID
//     bytes (NewMessageID's are shorter), Date is RFC 5322's fixed form.
//   - Bodies: text parts exact for 7bit and base64, and the bound of
//     textStats.qpBound for quoted-printable; attachments exactly 4/3 of
//     the decoded length plus a CRLF per 76 characters; boundary lines
//     exact.
//
// The loose parts are per field (the route's From and Reply-To allowances
// above all, about 1.3 KB each), so the estimate stays within a few KiB of
// the real size however large the bodies and attachments are.

const (
	maxMessageID = 300 // NewMessageID: "<" 32 hex "@" a domain of at most 253 ">"
	dateFieldMax = len("Date: Mon, 02 Jan 2006 15:04:05 -0700\r\n") + 8
	mimeVersion  = "MIME-Version: 1.0\r\n"
	boundaryLen  = len("=_") + 32 // newBoundary
	// undisclosedTo is the To field of a message with no To or Cc: an
	// empty group (RFC 5322 section 3.4, appendix A.1.3).
	undisclosedTo = "To: undisclosed-recipients:;\r\n"
)

// fieldBound bounds a header field written by go-message (textproto's
// formatHeaderField) with an address-list value of n bytes holding the
// given number of spaces and tabs.
func fieldBound(key string, n, spaces int64) int64 {
	folds := min(spaces, 2*n/64+2)
	return int64(len(key)) + 2 + n + 2 + 2*folds + 3*(n/900+1)
}

// addressBound bounds the length of one address formatted by net/mail's
// Address.String, and the spaces and tabs in it.
func addressBound(a Address) (n, spaces int64) {
	n = int64(len(a.Email)) + 4
	if a.Name == "" {
		return n, 0
	}
	printable, specials := true, false
	for i := 0; i < len(a.Name); i++ {
		c := a.Name[i]
		switch {
		case c == ' ' || c == '\t':
			spaces++
		case c < ' ' || c > '~':
			printable = false
		}
		if strings.IndexByte("\"#$%&'(),.:;<>@[]^`{|}~", c) >= 0 {
			specials = true
		}
	}
	spaces++ // between the name and "<email>"
	name := int64(len(a.Name))
	if printable {
		escapes := int64(strings.Count(a.Name, `"`) + strings.Count(a.Name, `\`))
		return n + 2 + name + escapes + 1, spaces
	}
	var words int64
	if specials { // mime.BEncoding
		words = name/42 + 1
		n += 4*name/3 + 4 + 4*words + 12*words
	} else { // mime.QEncoding
		words = 3*name/52 + 1
		n += 3*name + 12*words
	}
	return n + words, words
}

// worstAddressBound is the largest addressBound of any valid address
// (a name of maxName bytes, an email of maxEmail bytes), with its spaces.
func worstAddressBound() (n, spaces int64) {
	const name = maxName
	// Printable ASCII: at worst every byte a quote, or every byte a space.
	ascii := int64(maxEmail + 4 + 2 + 2*name + 1)
	q := int64(maxEmail + 4 + 3*name + 13*(3*name/52+1))
	b := int64(maxEmail + 4 + 4*name/3 + 4 + 17*(name/42+1))
	return max(ascii, q, b), name + 1
}

// addressListBound bounds a header field holding the addresses plus extra
// addresses of the worst shape; 0 when there are none.
func addressListBound(key string, as []Address, extra int) int64 {
	if len(as)+extra == 0 {
		return 0
	}
	var n, spaces int64
	for _, a := range as {
		an, asp := addressBound(a)
		n, spaces = n+an+2, spaces+asp+1 // ", " between addresses
	}
	if extra > 0 {
		an, asp := worstAddressBound()
		n, spaces = n+int64(extra)*(an+2), spaces+int64(extra)*(asp+1)
	}
	return fieldBound(key, n, spaces)
}

// The next three return the exact length of a field this package formats
// itself, formatting it into a buffer on the stack so that no valid value
// allocates.

func subjectLen(subject string) int64 {
	var buf [4096]byte
	return int64(len(appendSubject(buf[:0], subject)))
}

func customLen(name, value string) int64 {
	var buf [4096]byte
	return int64(len(appendCustom(buf[:0], name, value)))
}

func dispositionLen(filename string) int64 {
	var buf [4096]byte
	return int64(len(appendContentDisposition(buf[:0], filename)))
}

func nameParamLen(filename string) int64 {
	var buf [4096]byte
	return int64(len(appendNameParam(buf[:0], filename)))
}

// attachmentBound is the exact length of an attachment part after its
// boundary line: its header (the formatted Content-Type of ctLen bytes and
// its name parameter, base64, the Content-Disposition), the blank line and
// the base64 body of the decoded bytes.
func attachmentBound(filename string, ctLen int, decoded int64) int64 {
	return int64(len("Content-Type: \r\n")+ctLen+transferEncodingFieldLen(encBase64)+len("\r\n")) +
		nameParamLen(filename) + dispositionLen(filename) + base64Wrapped(decoded)
}

// boundariesLen is the exact length of the boundary lines of a multipart
// body of n parts: "--b" CRLF, then CRLF "--b" CRLF before each further
// part, then CRLF "--b--" CRLF (RFC 2046 section 5.1.1).
func boundariesLen(parts int) int64 {
	b := int64(boundaryLen)
	return b + 4 + int64(parts-1)*(b+6) + b + 8
}

// textPartLen bounds a text part: its two MIME fields, the blank line and
// the encoded body.
func textPartLen(mediaType string, st textStats) int64 {
	enc, size := st.encoding()
	return int64(len("Content-Type: ; charset=utf-8\r\n")+len(mediaType)+transferEncodingFieldLen(enc)+len("\r\n")) + size
}

// transferEncodingFieldLen is len(transferEncodingField(enc)).
func transferEncodingFieldLen(enc transferEncoding) int {
	return len("Content-Transfer-Encoding: \r\n") + len(enc)
}

// multipartFieldLen is len(multipartField(subtype, newBoundary())).
func multipartFieldLen(subtype string) int64 {
	return int64(len("Content-Type: multipart/;\r\n boundary=\"\"\r\n") + len(subtype) + boundaryLen)
}

// sizeBound is the upper bound of the composed message described above,
// given the text and HTML statistics and the exact length of the
// attachment parts.
func (r *Request) sizeBound(text, html textStats, attachments int64) int64 {
	to, cc := r.headerRecipients()
	n := addressListBound("From", nil, 1) +
		addressListBound("Cc", cc, 0) +
		addressListBound("Reply-To", r.ReplyTo, 1) +
		int64(len("Message-ID: \r\n")+maxMessageID+dateFieldMax+len(mimeVersion)) +
		subjectLen(r.Subject) +
		2 // the blank line after the header
	if len(to)+len(cc) == 0 {
		n += int64(len(undisclosedTo))
	} else {
		n += addressListBound("To", to, 0)
	}
	for name, value := range r.Headers {
		n += customLen(name, value)
	}

	alternative := func() int64 {
		return boundariesLen(2) + textPartLen("text/plain", text) + textPartLen("text/html", html)
	}
	// A text part's length counts its blank line, which for a single-part
	// message is the top header's and already counted.
	var first int64 // the first part of a multipart/mixed
	switch {
	case r.Text != "" && r.HTML != "":
		if len(r.Attachments) == 0 {
			return n + multipartFieldLen("alternative") + alternative()
		}
		first = multipartFieldLen("alternative") + 2 + alternative()
	case r.Text != "":
		first = textPartLen("text/plain", text)
	default:
		first = textPartLen("text/html", html)
	}
	if len(r.Attachments) == 0 {
		return n + first - 2
	}
	return n + multipartFieldLen("mixed") + boundariesLen(1+len(r.Attachments)) + first + attachments
}

// estimateSize is sizeBound for a request that has not been through
// Validate.
func estimateSize(r *Request) int64 {
	r = r.withTextAlternative()
	var att int64
	for _, a := range r.Attachments {
		ct, _ := formatContentType(a.ContentType)
		decoded, err := base64DecodedLen(a.Content)
		if err != nil {
			decoded = int64(len(a.Content)) / 4 * 3
		}
		att += attachmentBound(a.Filename, len(ct), decoded)
	}
	return r.sizeBound(scanText(r.Text), scanText(r.HTML), att)
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}
