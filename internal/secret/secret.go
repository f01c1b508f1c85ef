// Package secret holds credentials in memory in a form that refuses to be
// printed, logged or marshalled by accident.
package secret

import (
	"fmt"
	"log/slog"
)

const redacted = "[redacted]"

// String is a credential such as an SMTP password or an API token. Every way
// Go has of printing a value (fmt verbs, slog, encoding/json) shows
// "[redacted]"; only Reveal returns the text, so each use is a deliberate one.
type String struct{ s string }

// New wraps s.
func New(s string) String { return String{s: s} }

// Reveal returns the credential itself. Call it only where the credential
// leaves the process on purpose (an AUTH command, sealing).
func (s String) Reveal() string { return s.s }

// IsZero reports whether no credential is held.
func (s String) IsZero() bool { return s.s == "" }

// Equal compares two credentials.
func (s String) Equal(o String) bool { return s.s == o.s }

func (s String) String() string   { return redacted }
func (s String) GoString() string { return redacted }

// Format covers every fmt verb, including %#v and %x, which would otherwise
// bypass String.
func (s String) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue keeps the credential out of structured logs.
func (s String) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON never writes the credential.
func (s String) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText never writes the credential.
func (s String) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalText reads a credential; JSON decoders call it with the text of
// a string and refuse any other kind of value.
func (s *String) UnmarshalText(b []byte) error {
	s.s = string(b)
	return nil
}
