package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func mustKey(t *testing.T) []byte {
	t.Helper()
	k, err := ParseKey(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSealer(t *testing.T, current []byte, previous ...[]byte) *Sealer {
	t.Helper()
	s, err := New(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := mustSealer(t, mustKey(t))
	ad := []byte("tenant:acme:password")
	sealed, err := s.Seal([]byte("abcdefghijklmnop"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "abcdefghijklmnop") {
		t.Fatalf("sealed value contains the plaintext: %s", sealed)
	}
	again, _ := s.Seal([]byte("abcdefghijklmnop"), ad)
	if again == sealed {
		t.Fatal("two seals of the same plaintext are identical: nonce reused")
	}
	plain, err := s.Open(sealed, ad)
	if err != nil || string(plain) != "abcdefghijklmnop" {
		t.Fatalf("Open = %q, %v", plain, err)
	}
}

func TestOpenRefusesTamperingAndMisplacement(t *testing.T) {
	s := mustSealer(t, mustKey(t))
	sealed, _ := s.Seal([]byte("secret"), []byte("tenant:acme"))

	if _, err := s.Open(sealed, []byte("tenant:other")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("value moved to another tenant opened: %v", err)
	}
	flipped := []byte(sealed)
	flipped[len(flipped)-3] ^= 0x01
	if _, err := s.Open(string(flipped), []byte("tenant:acme")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("tampered value opened: %v", err)
	}
	for _, bad := range []string{"", "v1", "v2.abcd.xyz", "v1.nokey", "v1." + s.currentID + ".!!"} {
		if _, err := s.Open(bad, nil); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := mustKey(t), mustKey(t)
	before := mustSealer(t, oldKey)
	sealedOld, _ := before.Seal([]byte("pw"), nil)

	after := mustSealer(t, newKey, oldKey)
	plain, err := after.Open(sealedOld, nil)
	if err != nil || !bytes.Equal(plain, []byte("pw")) {
		t.Fatalf("rotated sealer cannot open old value: %q %v", plain, err)
	}
	if after.IsCurrent(sealedOld) {
		t.Error("old value reported as sealed with the current key")
	}
	sealedNew, _ := after.Seal(plain, nil)
	if !after.IsCurrent(sealedNew) {
		t.Error("new value not sealed with the current key")
	}
	if _, err := before.Open(sealedNew, nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old sealer opened a value of a key it never had: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	for _, bad := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}
