package message

import (
	"io"
	"strings"
)

// transferEncoding is a Content-Transfer-Encoding (RFC 2045 section 6).
type transferEncoding string

const (
	enc7bit            transferEncoding = "7bit"
	encQuotedPrintable transferEncoding = "quoted-printable"
	encBase64          transferEncoding = "base64"
)

// maxLineOctets is the hard limit on a line of a message, CRLF excluded
// (RFC 5322 section 2.1.1, RFC 5321 section 4.5.3.1.6).
const maxLineOctets = 998

// textStats is what one pass over a text body tells: enough to choose its
// transfer encoding and to know the encoded size without encoding.
type textStats struct {
	n        int64 // bytes
	nonASCII int64 // bytes >= 0x80
	breakLen int64 // bytes that are CR or LF
	breaks   int64 // line breaks: CRLF, a lone CR or a lone LF each count one
	maxLine  int64 // longest line in bytes, line break excluded
	qpChars  int64 // quoted-printable output for the non-break bytes: 1 or 3 each
	nul      bool
}

// plainByte marks the bytes quoted-printable writes as themselves: printable
// ASCII but '=', space and tab. Most text is long runs of them.
var plainByte = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = c != '='
	}
	t[' '], t['\t'] = true, true
	return t
}()

// scanText measures s in one pass, allocating nothing.
func scanText(s string) textStats {
	st := textStats{n: int64(len(s))}
	var line int64
	for i := 0; i < len(s); i++ {
		// A run of plain bytes only lengthens the line: count it in a
		// tight loop (three times as fast on ordinary text as a switch
		// per byte).
		if plainByte[s[i]] {
			j := i + 1
			for j < len(s) && plainByte[s[j]] {
				j++
			}
			st.qpChars += int64(j - i)
			line += int64(j - i)
			i = j - 1
			continue
		}
		switch c := s[i]; {
		case c == '\r' || c == '\n':
			st.breakLen++
			if c == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				st.breakLen++
				i++
			}
			st.breaks++
			st.maxLine = max(st.maxLine, line)
			line = 0
		default: // '=', a control or a byte of UTF-8: encoded as =XX
			st.qpChars += 3
			if c >= 0x80 {
				st.nonASCII++
			} else if c == 0 {
				st.nul = true
			}
			line++
		}
	}
	st.maxLine = max(st.maxLine, line)
	return st
}

// canonicalLen is the length of the text with every line break as CRLF,
// the canonical form of text (RFC 2046 section 4.1.1).
func (st textStats) canonicalLen() int64 {
	return st.n - st.breakLen + 2*st.breaks
}

// qpBound is an upper bound of the text's length once encoded by
// mime/quotedprintable (RFC 2045 section 6.7). Each non-break byte becomes
// 1 or 3 characters (qpChars); a space or tab before a line break or at the
// end is re-encoded as 3 characters (at most 2 more per line); a soft line
// break "=" CRLF comes after at least 73 characters of a line, so there are
// at most C/73 of them; each line break is CRLF.
func (st textStats) qpBound() int64 {
	c := st.qpChars + 2*(st.breaks+1)
	return c + 3*(c/73) + 2*st.breaks
}

// encoding chooses the transfer encoding of a text part: 7bit when it is
// pure ASCII with no line longer than 998 octets, else whichever of
// quoted-printable and base64 is shorter (quoted-printable for mostly ASCII
// text, base64 for mostly non-ASCII text such as Arabic, which
// quoted-printable would triple). It returns the encoded size too, exact
// for 7bit and base64 and an upper bound for quoted-printable.
func (st textStats) encoding() (transferEncoding, int64) {
	if st.nonASCII == 0 && !st.nul && st.maxLine <= maxLineOctets {
		return enc7bit, st.canonicalLen()
	}
	qp, b64 := st.qpBound(), base64Wrapped(st.canonicalLen())
	if qp <= b64 {
		return encQuotedPrintable, qp
	}
	return encBase64, b64
}

// base64Wrapped is the exact length of n bytes encoded in padded base64
// with CRLF between lines of 76 characters, as go-message writes a base64
// body (RFC 2045 section 6.8): no CRLF after the last line.
func base64Wrapped(n int64) int64 {
	e := (n + 2) / 3 * 4
	if e == 0 {
		return 0
	}
	return e + 2*((e-1)/76)
}

// writeCanonical writes s to w with every line break (CRLF, lone CR, lone
// LF) written as CRLF, in chunks through one recycled buffer. The text
// between breaks is found with strings.IndexByte and copied whole.
func writeCanonical(w io.Writer, s string) error {
	pooled := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(pooled)
	buf := (*pooled)[:0]
	put := func(text string) error {
		for len(text) > 0 {
			n := copy(buf[len(buf):cap(buf)], text)
			buf, text = buf[:len(buf)+n], text[n:]
			if len(buf) == cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		return nil
	}
	lf := strings.IndexByte(s, '\n') // the next LF at or after i, or -1
	for i := 0; i < len(s); {
		if lf >= 0 && lf < i {
			if lf = strings.IndexByte(s[i:], '\n'); lf >= 0 {
				lf += i
			}
		}
		end := len(s)
		if lf >= 0 {
			end = lf
		}
		if cr := strings.IndexByte(s[i:end], '\r'); cr >= 0 {
			end = i + cr
		}
		if err := put(s[i:end]); err != nil {
			return err
		}
		if i = end; i == len(s) {
			break
		}
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i += 2
		} else {
			i++
		}
		if err := put("\r\n"); err != nil {
			return err
		}
	}
	if len(buf) == 0 {
		return nil
	}
	_, err := w.Write(buf)
	return err
}
