package message

import (
	"strings"
	"unicode/utf8"
)

// Header lines are kept to 78 characters where the content allows (RFC 5322
// section 2.1.1) and encoded-words to 75 characters on lines of at most 76
// (RFC 2047 section 2).
const (
	maxEncodedWord = 75
	maxEncodedLine = 76
	wordOverhead   = len("=?utf-8?q?") + len("?=")
	// maxPlainToken is the longest run of non-space characters an
	// unstructured value may hold and still be sent as is: folding happens
	// only before a space, so a longer run is sent as encoded-words.
	maxPlainToken = 200
)

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
const hexUpper = "0123456789ABCDEF"

// plainUnstructured reports whether an unstructured header value (RFC 5322
// section 3.2.5) survives a round trip as is: printable ASCII and single
// spaces only, no leading or trailing space, no "=?" (a reader would take it
// for an encoded-word) and no run of more than maxPlainToken characters
// without a space to fold at. Readers collapse the whitespace around a fold,
// which is why runs of spaces and tabs are not plain.
func plainUnstructured(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' || strings.Contains(s, "=?") {
		return false
	}
	token := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			if s[i-1] == ' ' {
				return false
			}
			token = 0
		case c > ' ' && c <= '~':
			token++
			if token > maxPlainToken {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// maxSoftLine is where folding starts (RFC 5322 section 2.1.1: lines
// SHOULD be at most 78 characters).
const maxSoftLine = 78

// appendSubject appends the Subject field: as is when plainUnstructured,
// else as encoded-words.
func appendSubject(dst []byte, subject string) []byte {
	return appendField(dst, "Subject", subject, !plainUnstructured(subject))
}

// appendCustom appends one of the caller's header fields: as is when it is
// ASCII and can be folded within 998-octet lines, else as encoded-words
// (the value is then taken for unstructured text).
func appendCustom(dst []byte, name, value string) []byte {
	return appendField(dst, name, value, !foldable(value))
}

// foldable reports whether an ASCII value fits lines of 998 octets when
// folded only before its spaces and tabs.
func foldable(value string) bool {
	token := 0
	for i := 0; i < len(value); i++ {
		switch c := value[i]; {
		case c == ' ' || c == '\t':
			token = 0
		case c >= 0x80:
			return false
		default:
			token++
			if token >= maxLineOctets {
				return false
			}
		}
	}
	return true
}

// appendField appends the header field "name: value" CRLF, the name as
// given. Without encode the value is written as is, folded (RFC 5322
// section 3.2.2: a CRLF put before a space or tab) so that lines stay
// within 78 characters where the words allow; folding never adds or removes
// a character of the value. With encode the value is written as RFC 2047
// encoded-words, one per line of at most 76 characters.
func appendField(dst []byte, name, value string, encode bool) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':')
	if encode {
		dst = append(dst, ' ')
		first := max(maxEncodedLine-len(name)-2, 2*wordOverhead)
		dst = appendEncodedWords(dst, value, first, maxEncodedWord, "\r\n ")
		return append(dst, "\r\n"...)
	}
	// The value is a run of segments, each one space or tab and the word
	// after it; the first segment's space is the one after the colon.
	line := len(name) + 1
	for i, first := 0, true; first || i < len(value); first = false {
		ws := byte(' ')
		if !first {
			ws = value[i]
			i++
		}
		j := i
		for j < len(value) && value[j] != ' ' && value[j] != '\t' {
			j++
		}
		seg := 1 + j - i
		limit := maxSoftLine
		if first || j == i {
			// Keep the first word on the name's line, and never leave a
			// line of only spaces, unless the line would be too long.
			limit = maxLineOctets
		}
		if line+seg > limit {
			dst = append(dst, "\r\n"...)
			line = 0
		}
		dst = append(dst, ws)
		dst = append(dst, value[i:j]...)
		line += seg
		i = j
	}
	return append(dst, "\r\n"...)
}

// qSafe reports the bytes the Q encoding may carry as themselves in any
// header, a phrase included (RFC 2047 section 5 (3)).
func qSafe(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '!' || c == '*' || c == '+' || c == '-' || c == '/'
}

func qLen(c byte) int {
	if qSafe(c) || c == ' ' {
		return 1
	}
	return 3
}

// appendEncodedWords appends s as UTF-8 RFC 2047 encoded-words separated by
// sep: B or Q, whichever is shorter overall, the first word at most first
// characters long and the others at most rest, never splitting a
// character across words (section 5). Readers drop the whitespace between
// adjacent encoded-words (section 6.2), so s comes back exactly.
func appendEncodedWords(dst []byte, s string, first, rest int, sep string) []byte {
	q := 0
	for i := 0; i < len(s); i++ {
		q += qLen(s[i])
	}
	useB := (len(s)+2)/3*4 < q
	limit := first - wordOverhead
	open := func(dst []byte) []byte {
		if useB {
			return append(dst, "=?utf-8?b?"...)
		}
		return append(dst, "=?utf-8?q?"...)
	}
	dst = open(dst)
	start, used := 0, 0 // the current word's first byte of s, its payload length
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		var grow int
		if useB {
			grow = (i+size-start+2)/3*4 - used
		} else {
			for k := i; k < i+size; k++ {
				grow += qLen(s[k])
			}
		}
		if used > 0 && used+grow > limit {
			if useB {
				dst = appendB64(dst, s[start:i])
			}
			dst = append(dst, "?="...)
			dst = append(dst, sep...)
			dst = open(dst)
			limit = rest - wordOverhead
			start, used = i, 0
			continue
		}
		if !useB {
			dst = appendQ(dst, s[i:i+size])
		}
		used += grow
		i += size
	}
	if useB {
		dst = appendB64(dst, s[start:])
	}
	return append(dst, "?="...)
}

// appendQ appends s in the Q encoding (RFC 2047 section 4.2).
func appendQ(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			dst = append(dst, '_')
		case qSafe(c):
			dst = append(dst, c)
		default:
			dst = append(dst, '=', hexUpper[c>>4], hexUpper[c&0x0f])
		}
	}
	return dst
}

// appendB64 appends s in padded standard base64 (RFC 4648 section 4), the
// B encoding (RFC 2047 section 4.1), without converting s to a byte slice.
func appendB64(dst []byte, s string) []byte {
	for len(s) >= 3 {
		v := uint(s[0])<<16 | uint(s[1])<<8 | uint(s[2])
		dst = append(dst, b64Alphabet[v>>18&63], b64Alphabet[v>>12&63], b64Alphabet[v>>6&63], b64Alphabet[v&63])
		s = s[3:]
	}
	switch len(s) {
	case 1:
		v := uint(s[0]) << 16
		dst = append(dst, b64Alphabet[v>>18&63], b64Alphabet[v>>12&63], '=', '=')
	case 2:
		v := uint(s[0])<<16 | uint(s[1])<<8
		dst = append(dst, b64Alphabet[v>>18&63], b64Alphabet[v>>12&63], b64Alphabet[v>>6&63], '=')
	}
	return dst
}

// attrChar reports the bytes an RFC 2231 extended value carries as
// themselves: attribute-char, that is a token character other than "*",
// "'" and "%" (RFC 2231 section 7, RFC 2045 section 5.1).
func attrChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}

// appendContentDisposition appends the Content-Disposition field of an
// attachment (RFC 2183). A name that is quotable travels as
// filename="..."; any other (non-ASCII, say) as
// one RFC 2231 extended parameter and nothing else:
//
//	filename*=utf-8''%D9%81%D8%A7...
//
// A plain filename="..." beside it would be a second value for the same
// parameter, and readers disagree on which wins: Python's email package and
// SpamAssassin take the plain one. The extended parameter goes on a line of
// its own and is split into continuations (filename*0*=, filename*1*=,
// RFC 2231 section 4.1) only where that line would pass 998 octets.
func appendContentDisposition(dst []byte, filename string) []byte {
	dst = append(dst, "Content-Disposition: attachment;\r\n"...)
	if quotable(filename, len(" filename=")) {
		dst = append(dst, " filename="...)
		dst = appendQuoted(dst, filename)
	} else {
		dst = appendExtendedParam(dst, "filename", filename)
	}
	return append(dst, "\r\n"...)
}

// appendNameParam appends the Content-Type name parameter of an attachment,
// its own folded line, for the readers that look there (RFC 2046 section
// 4.5.1 defines it for application/octet-stream; Outlook and others read it
// for every type). A plain name is a quoted-string; any other is RFC 2047
// encoded-words inside the quotes, the form Outlook, Thunderbird and Apple
// Mail read there and write themselves, and which Python's email package
// (policy.default directly, compat32 through decode_header) and
// go-message decode. Each word has a line of its own; readers drop the
// folding between encoded-words.
func appendNameParam(dst []byte, filename string) []byte {
	dst = append(dst, ";\r\n name="...)
	if quotable(filename, len(" name=")) {
		return appendQuoted(dst, filename)
	}
	dst = append(dst, '"')
	dst = appendEncodedWords(dst, filename, maxEncodedLine-len(` name="`), maxEncodedWord, "\r\n ")
	return append(dst, '"')
}

// quotable reports whether s reads back unchanged from a quoted-string
// (plainUnstructured) that fits, after prefix octets, on one line.
func quotable(s string, prefix int) bool {
	if !plainUnstructured(s) {
		return false
	}
	n := prefix + len(s) + 2 + strings.Count(s, `"`) + strings.Count(s, `\`)
	return n <= maxExtendedLine
}

// appendQuoted appends s as a quoted-string (RFC 5322 section 3.2.4): '"'
// and '\\' escaped. Only quotable values are written this way.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// maxExtendedLine is the longest line appendExtendedParam writes: the
// hard limit, less room for the ";" that ends a continuation.
const maxExtendedLine = maxLineOctets - 1

// appendExtendedParam appends " name*=utf-8”value" (RFC 2231 section 4),
// the value's bytes percent-encoded unless attrChar. When that line would
// be longer than maxExtendedLine it appends continuations instead, each on
// its own line and split between characters, never inside one:
//
//	name*0*=utf-8''...;
//	 name*1*=...
func appendExtendedParam(dst []byte, name, value string) []byte {
	single := 1 + len(name) + len("*=utf-8''")
	for i := 0; i < len(value); i++ {
		single += percentLen(value[i])
	}
	if single <= maxExtendedLine {
		dst = append(dst, ' ')
		dst = append(dst, name...)
		dst = append(dst, "*=utf-8''"...)
		return appendPercent(dst, value)
	}
	for piece, i := 0, 0; i < len(value); piece++ {
		if piece > 0 {
			dst = append(dst, ";\r\n"...)
		}
		line := len(dst)
		dst = append(dst, ' ')
		dst = append(dst, name...)
		dst = append(dst, '*')
		dst = appendInt(dst, piece)
		dst = append(dst, "*="...)
		if piece == 0 {
			dst = append(dst, "utf-8''"...)
		}
		for start := i; i < len(value); {
			_, size := utf8.DecodeRuneInString(value[i:])
			n := 0
			for k := i; k < i+size; k++ {
				n += percentLen(value[k])
			}
			if i > start && len(dst)-line+n > maxExtendedLine {
				break
			}
			dst = appendPercent(dst, value[i:i+size])
			i += size
		}
	}
	return dst
}

func percentLen(c byte) int {
	if attrChar(c) {
		return 1
	}
	return 3
}

// appendPercent appends s with every byte but attrChar ones as %XX.
func appendPercent(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; attrChar(c) {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&0x0f])
		}
	}
	return dst
}

func appendInt(dst []byte, n int) []byte {
	if n >= 10 {
		dst = appendInt(dst, n/10)
	}
	return append(dst, byte('0'+n%10))
}
