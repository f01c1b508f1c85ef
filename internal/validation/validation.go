// Package validation is the shape of "these fields are wrong" shared by the
// domain packages, so the HTTP layer can render every such failure as one
// 422 problem with a per-field list.
package validation

import (
	"net/mail"
	"strconv"
	"strings"
)

// Field names one bad field by its JSON path ("to[2].email", "port").
type Field struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error lists every bad field of one input, not only the first.
type Error struct {
	Fields []Field
}

// Add records one bad field.
func (e *Error) Add(field, code, message string) {
	e.Fields = append(e.Fields, Field{Field: field, Code: code, Message: message})
}

// Has reports whether field is already listed, so a later check can leave
// out a second, less precise complaint about it.
func (e *Error) Has(field string) bool {
	for _, f := range e.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}

// Text checks a free-text value that may reach a header, a log line or an
// SMTP command: no control characters (see HasControl), at most max bytes.
func (e *Error) Text(field, value string, max int) {
	switch {
	case HasControl(value):
		e.Add(field, "invalid_characters", "must not contain control characters such as CR or LF")
	case len(value) > max:
		e.Add(field, "too_long", "at most "+strconv.Itoa(max)+" bytes")
	}
}

// Err returns e as an error when it holds any field, else nil, so a
// validator can end with `return errs.Err()`.
func (e *Error) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("validation failed: ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + ": " + f.Message)
	}
	return b.String()
}

// HasControl reports whether s holds a character that must never reach a
// mail header or an SMTP command line: CR, LF, NUL, any other C0 control
// except TAB, or DEL (RFC 5322 section 3.2, RFC 5321 section 4.1.1).
func HasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

// IsEmail reports whether s is a bare RFC 5322 addr-spec (local@domain, no
// display name, no angle brackets) of at most 254 octets (RFC 5321 section
// 4.5.3.1.3 limits a path to 256 including the brackets).
func IsEmail(s string) bool {
	if len(s) == 0 || len(s) > 254 || HasControl(s) {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1
}

// Domain returns the part of an email address after the last '@'.
func Domain(email string) string {
	return email[strings.LastIndexByte(email, '@')+1:]
}
