package message

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// NewMessageID returns a Message-ID field value (RFC 5322 section 3.6.4),
// "<random@domain>", with 128 bits of crypto randomness on the left and
// the domain of email (the From address) on the right, so the identifier
// is unique and belongs to the sender's domain rather than this machine's
// host name. An email without a domain gets "localhost".
func NewMessageID(email string) string {
	var b [16]byte
	rand.Read(b[:])
	domain := "localhost"
	if at := strings.LastIndexByte(email, '@'); at >= 0 && at < len(email)-1 {
		domain = email[at+1:]
	}
	return "<" + hex.EncodeToString(b[:]) + "@" + domain + ">"
}
