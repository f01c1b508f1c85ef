package message

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Compose writes the complete message (headers + body) to w, CRLF line
// endings, no line longer than 998 octets (RFC 5322 section 2.1.1).
//
// Header fields, in order: From (h.From), To, Cc, Reply-To (h.ReplyTo),
// Subject, Date, Message-ID, MIME-Version, the request's own headers in
// sorted name order, then the MIME fields. Bcc is never written: blind
// recipients appear only in the envelope (RFC 5322 section 3.6.3). A
// recipient listed more than once is written once, where it first appears
// (see headerRecipients). With no To or Cc the To field is the empty group
// "undisclosed-recipients:;".
// Non-ASCII display names and subjects are RFC 2047 encoded-words.
//
// The body (RFC 2045, RFC 2046) is a single text/plain part, or a
// multipart/alternative of text and HTML (text first; from HTML alone the
// text is generated, see withTextAlternative and htmlToText), and with attachments a
// multipart/mixed of that body and then each attachment, base64, with an
// RFC 2183 Content-Disposition whose non-ASCII filename is in RFC 2231 form
// and a Content-Type name parameter (see appendContentDisposition and
// appendNameParam).
// Text parts are UTF-8 in 7bit, quoted-printable or base64, whichever fits
// (see textStats.encoding). Attachment content is decoded from base64 as it
// is written, so no attachment is held twice in memory.
//
// Compose re-checks every field that could reach a header, so a request
// that skipped Validate still cannot inject one, and then writes nothing;
// attachment content and the limits are Validate's job. An error after the
// checks (a failing w, attachment content that is not base64) may leave a
// partial message in w: the caller must not send it (over SMTP, abort the
// DATA rather than end it).
func Compose(w io.Writer, r *Request, h Header) error {
	r = r.withTextAlternative()
	textSt, htmlSt, err := checkCompose(r, h)
	if err != nil {
		return fmt.Errorf("message: compose: %w", err)
	}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() {
		bw.Reset(nil) // hold no reference to w
		writers.Put(bw)
	}()
	if err := compose(bw, r, h, textSt, htmlSt); err != nil {
		return fmt.Errorf("message: compose: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("message: compose: %w", err)
	}
	return nil
}

// writers and copyBuffers recycle Compose's buffers: a fresh buffer per
// message was most of what composing a short message allocated
// (docs/measurements.md, "Recycled compose buffers").
var (
	writers     = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}
	copyBuffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}
)

// checkCompose runs Validate's field checks, without decoding attachments
// or applying limits, and checks the route's header. It returns the text
// and HTML statistics it measured on the way.
func checkCompose(r *Request, h Header) (text, html textStats, err error) {
	var errs ValidationError
	v := checker{errs: &errs}
	v.request(r)
	v.address("header.from", -1, h.From)
	v.addresses("header.reply_to", h.ReplyTo)
	if !validMessageID(h.MessageID) {
		errs.Add("header.message_id", "invalid_message_id",
			`must be "<id-left@id-right>" without spaces or controls, at most `+fmt.Sprint(maxMessageID)+" bytes")
	}
	if h.Date.IsZero() {
		errs.Add("header.date", codeRequired, "the Date field is required (RFC 5322 section 3.6)")
	}
	return v.text, v.html, errs.Err()
}

// validMessageID reports a msg-id (RFC 5322 section 3.6.4) in the shape
// NewMessageID makes: "<" left "@" right ">", printable ASCII (or UTF-8,
// RFC 6532 section 3.2, for a sender's internationalised domain) without
// spaces or further angle brackets.
func validMessageID(id string) bool {
	if len(id) < len("<a@b>") || len(id) > maxMessageID || id[0] != '<' || id[len(id)-1] != '>' ||
		!utf8.ValidString(id) {
		return false
	}
	at := -1
	for i := 1; i < len(id)-1; i++ {
		c := id[i]
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return false
		}
		if c == '@' {
			at = i
		}
	}
	return at > 1 && at < len(id)-2
}

// newBoundary returns a multipart boundary (RFC 2046 section 5.1.1). "=_"
// can occur in neither quoted-printable nor base64, and 128 random bits
// keep it out of 7bit text.
func newBoundary() string {
	var b [16]byte
	rand.Read(b[:])
	return "=_" + hex.EncodeToString(b[:])
}

func compose(w io.Writer, r *Request, h Header, textSt, htmlSt textStats) error {
	var top mail.Header
	// go-message writes the field added last first, so the header is built
	// from the bottom up: MIME fields, custom fields, then the rest.
	var boundary string
	switch {
	case len(r.Attachments) > 0:
		boundary = newBoundary()
		top.AddRaw(multipartField("mixed", boundary))
	case r.Text != "" && r.HTML != "":
		boundary = newBoundary()
		top.AddRaw(multipartField("alternative", boundary))
	case r.Text != "":
		addTextFields(&top.Header.Header, "text/plain", textSt)
	default:
		addTextFields(&top.Header.Header, "text/html", htmlSt)
	}
	addFields(&top, r, h)
	if err := textproto.WriteHeader(w, top.Header.Header); err != nil {
		return fmt.Errorf("header: %w", err)
	}

	switch {
	case len(r.Attachments) > 0:
		return writeMixed(w, boundary, r, textSt, htmlSt)
	case r.Text != "" && r.HTML != "":
		return writeAlternative(w, boundary, r, textSt, htmlSt)
	case r.Text != "":
		return writeText(w, r.Text, textSt)
	default:
		return writeText(w, r.HTML, htmlSt)
	}
}

// addFields adds, bottom-up, the fields above the MIME ones.
func addFields(top *mail.Header, r *Request, h Header) {
	names := make([]string, 0, len(r.Headers))
	for name := range r.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for i := len(names) - 1; i >= 0; i-- {
		top.AddRaw(appendCustom(nil, names[i], r.Headers[names[i]]))
	}
	top.AddRaw([]byte(mimeVersion))
	top.AddRaw([]byte("Message-ID: " + h.MessageID + "\r\n"))
	top.SetDate(h.Date)
	top.AddRaw(appendSubject(nil, r.Subject))
	top.SetAddressList("Reply-To", mailAddresses(h.ReplyTo))
	to, cc := r.headerRecipients()
	top.SetAddressList("Cc", mailAddresses(cc))
	if len(to)+len(cc) == 0 {
		top.AddRaw([]byte(undisclosedTo))
	} else {
		top.SetAddressList("To", mailAddresses(to))
	}
	top.SetAddressList("From", mailAddresses([]Address{h.From}))
}

func mailAddresses(as []Address) []*mail.Address {
	out := make([]*mail.Address, len(as))
	for i, a := range as {
		out[i] = &mail.Address{Name: a.Name, Address: a.Email}
	}
	return out
}

// addTextFields adds a text part's Content-Type and
// Content-Transfer-Encoding, bottom-up.
func addTextFields(h *textproto.Header, mediaType string, st textStats) {
	enc, _ := st.encoding()
	h.AddRaw([]byte(transferEncodingField(enc)))
	h.AddRaw([]byte(textTypeField(mediaType)))
}

func textTypeField(mediaType string) string {
	return "Content-Type: " + mediaType + "; charset=utf-8\r\n"
}

func transferEncodingField(enc transferEncoding) string {
	return "Content-Transfer-Encoding: " + string(enc) + "\r\n"
}

// multipartField is the Content-Type field of a multipart entity (RFC 2046
// section 5.1), folded before its boundary parameter.
func multipartField(subtype, boundary string) []byte {
	return []byte("Content-Type: multipart/" + subtype + ";\r\n boundary=\"" + boundary + "\"\r\n")
}

// writeText writes a text body in the encoding addTextFields announced,
// with its line breaks made CRLF.
func writeText(w io.Writer, s string, st textStats) error {
	enc, _ := st.encoding()
	switch enc {
	case encQuotedPrintable:
		qw := quotedprintable.NewWriter(w)
		if err := writeCanonical(qw, s); err != nil {
			return err
		}
		return qw.Close()
	case encBase64:
		bw := base64.NewEncoder(base64.StdEncoding, &lineWrapper{w: w})
		if err := writeCanonical(bw, s); err != nil {
			return err
		}
		return bw.Close()
	default:
		return writeCanonical(w, s)
	}
}

func writeAlternative(w io.Writer, boundary string, r *Request, textSt, htmlSt textStats) error {
	mw := textproto.NewMultipartWriter(w)
	if err := mw.SetBoundary(boundary); err != nil {
		return err
	}
	for _, p := range [...]struct {
		mediaType, body string
		st              textStats
	}{{"text/plain", r.Text, textSt}, {"text/html", r.HTML, htmlSt}} {
		var h textproto.Header
		addTextFields(&h, p.mediaType, p.st)
		pw, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		if err := writeText(pw, p.body, p.st); err != nil {
			return err
		}
	}
	return mw.Close()
}

func writeMixed(w io.Writer, boundary string, r *Request, textSt, htmlSt textStats) error {
	mw := textproto.NewMultipartWriter(w)
	if err := mw.SetBoundary(boundary); err != nil {
		return err
	}
	var err error
	switch {
	case r.Text != "" && r.HTML != "":
		inner := newBoundary()
		var h textproto.Header
		h.AddRaw(multipartField("alternative", inner))
		var pw io.Writer
		if pw, err = mw.CreatePart(h); err == nil {
			err = writeAlternative(pw, inner, r, textSt, htmlSt)
		}
	case r.Text != "":
		err = writeTextPart(mw, "text/plain", r.Text, textSt)
	default:
		err = writeTextPart(mw, "text/html", r.HTML, htmlSt)
	}
	if err != nil {
		return err
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	for i, a := range r.Attachments {
		if err := writeAttachment(mw, a, *buf); err != nil {
			return fmt.Errorf("attachments[%d]: %w", i, err)
		}
	}
	return mw.Close()
}

func writeTextPart(mw *textproto.MultipartWriter, mediaType, body string, st textStats) error {
	var h textproto.Header
	addTextFields(&h, mediaType, st)
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	return writeText(pw, body, st)
}

// errContent reports attachment content that is not valid base64.
var errContent = errors.New("content is not valid base64")

func writeAttachment(mw *textproto.MultipartWriter, a Attachment, buf []byte) error {
	ct, code := formatContentType(a.ContentType)
	if code != "" {
		return fmt.Errorf("content type: %s", code) // checkCompose has refused it already
	}
	var h textproto.Header
	h.AddRaw(appendContentDisposition(nil, a.Filename))
	h.AddRaw([]byte("Content-Transfer-Encoding: base64\r\n"))
	h.AddRaw(appendAttachmentType(nil, ct, a.Filename))
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	enc := base64.NewEncoder(base64.StdEncoding, &lineWrapper{w: pw})
	if _, err := io.CopyBuffer(enc, newContentReader(a.Content), buf); err != nil {
		var corrupt base64.CorruptInputError
		if errors.As(err, &corrupt) {
			return fmt.Errorf("%w: %w", errContent, err)
		}
		return err
	}
	return enc.Close()
}

// appendAttachmentType appends an attachment's Content-Type field: the
// formatted media type ct and, on a line of its own, the name parameter.
func appendAttachmentType(dst []byte, ct, filename string) []byte {
	dst = append(dst, "Content-Type: "...)
	dst = append(dst, ct...)
	dst = appendNameParam(dst, filename)
	return append(dst, "\r\n"...)
}

// lineWrapper breaks base64 output into lines of 76 characters with CRLF
// between them and none after the last (RFC 2045 section 6.8).
type lineWrapper struct {
	w   io.Writer
	col int
	eol [2]byte
}

func (l *lineWrapper) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if l.col == 76 {
			l.eol = [2]byte{'\r', '\n'}
			if _, err := l.w.Write(l.eol[:]); err != nil {
				return written, err
			}
			l.col = 0
		}
		k := min(76-l.col, len(p))
		n, err := l.w.Write(p[:k])
		written += n
		l.col += n
		if err != nil {
			return written, err
		}
		p = p[k:]
	}
	return written, nil
}
