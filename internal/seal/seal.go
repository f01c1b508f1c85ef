// Package seal encrypts secrets at rest with AES-256-GCM and supports key
// rotation: a Sealer seals with its current key and opens what any of its
// keys sealed.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of an AES-256 key.
const KeySize = 32

// version prefixes every sealed value so the format can change later.
const version = "v1"

var (
	// ErrUnknownKey means the value was sealed with a key this Sealer does
	// not hold (rotated out too early, or a different deployment).
	ErrUnknownKey = errors.New("seal: sealed with an unknown key")
	// ErrCorrupt means the value is malformed or failed authentication
	// (tampered with, or moved to another record: see additional data).
	ErrCorrupt = errors.New("seal: sealed value is corrupt or was tampered with")
)

// Sealer seals with the current key and opens with the current or any
// previous key.
type Sealer struct {
	currentID string
	aeads     map[string]cipher.AEAD
}

// ParseKey decodes a key in its configuration form: standard base64 of 32
// random bytes.
func ParseKey(b64 string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, fmt.Errorf("seal: key is not base64: %w", err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key is %d bytes, want %d", len(key), KeySize)
	}
	return key, nil
}

// NewKey returns a fresh key in its configuration form.
func NewKey() string {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
	return base64.StdEncoding.EncodeToString(key)
}

// New returns a Sealer that seals with current and also opens values sealed
// with any of previous.
func New(current []byte, previous ...[]byte) (*Sealer, error) {
	s := &Sealer{aeads: make(map[string]cipher.AEAD, 1+len(previous))}
	for i, key := range append([][]byte{current}, previous...) {
		id, aead, err := newAEAD(key)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			s.currentID = id
		}
		s.aeads[id] = aead
	}
	return s, nil
}

// newAEAD derives a short public key id (so a sealed value names the key
// that opens it without revealing anything about it) and the cipher.
func newAEAD(key []byte) (string, cipher.AEAD, error) {
	if len(key) != KeySize {
		return "", nil, fmt.Errorf("seal: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return "", nil, fmt.Errorf("seal: %w", err)
	}
	sum := sha256.Sum256(append([]byte("outbound seal key id\x00"), key...))
	return hex.EncodeToString(sum[:4]), aead, nil
}

// Seal encrypts plaintext with the current key. additionalData binds the
// value to its place (for example the tenant and field it belongs to), so a
// sealed value copied to another record fails to open.
//
// The result is "v1.<key id>.<base64url(nonce || ciphertext)>".
func (s *Sealer) Seal(plaintext, additionalData []byte) (string, error) {
	aead := s.aeads[s.currentID]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	out := aead.Seal(nonce, nonce, plaintext, additionalData)
	return version + "." + s.currentID + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value made by Seal with any key this Sealer holds.
func (s *Sealer) Open(sealed string, additionalData []byte) ([]byte, error) {
	id, payload, err := split(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := s.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrCorrupt
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], additionalData)
	if err != nil {
		return nil, ErrCorrupt
	}
	return plain, nil
}

// IsCurrent reports whether sealed was made with the current key; values
// that are not are re-sealed when their record is next written.
func (s *Sealer) IsCurrent(sealed string) bool {
	id, _, err := split(sealed)
	return err == nil && id == s.currentID
}

func split(sealed string) (id, payload string, err error) {
	v, rest, ok := strings.Cut(sealed, ".")
	if !ok || v != version {
		return "", "", ErrCorrupt
	}
	id, payload, ok = strings.Cut(rest, ".")
	if !ok {
		return "", "", ErrCorrupt
	}
	return id, payload, nil
}
