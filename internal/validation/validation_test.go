package validation

import (
	"strings"
	"testing"
)

func TestIsEmail(t *testing.T) {
	good := []string{"a@example.com", "first.last+tag@sub.example.co", "acme@gmail.com", "x@[127.0.0.1]"}
	bad := []string{"", "a", "@example.com", "a@", "Name <a@example.com>", "<a@example.com>",
		"a@example.com\r\nBcc: x@y.z", "a b@example.com", "a@exa mple.com", strings.Repeat("a", 250) + "@ex.com"}
	for _, s := range good {
		if !IsEmail(s) {
			t.Errorf("IsEmail(%q) = false", s)
		}
	}
	for _, s := range bad {
		if IsEmail(s) {
			t.Errorf("IsEmail(%q) = true", s)
		}
	}
}

func TestHasControl(t *testing.T) {
	for s, want := range map[string]bool{"plain": false, "tab\there": false, "فاتورة": false,
		"a\rb": true, "a\nb": true, "a\x00b": true, "a\x7fb": true, "a\x1bb": true} {
		if HasControl(s) != want {
			t.Errorf("HasControl(%q) = %v", s, !want)
		}
	}
}

func TestErrorCollects(t *testing.T) {
	var e Error
	if e.Err() != nil {
		t.Fatal("empty Error is not nil")
	}
	e.Add("port", "out_of_range", "port must be 1-65535")
	e.Add("email", "invalid_email", "not an address")
	err := e.Err()
	if err == nil || !strings.Contains(err.Error(), "port") || !strings.Contains(err.Error(), "email") {
		t.Fatalf("Err() = %v", err)
	}
}

func TestText(t *testing.T) {
	var e Error
	e.Text("ok", "Acme Trading", 20)
	e.Text("crlf", "a\r\nBcc: x", 20)
	e.Text("long", strings.Repeat("x", 21), 20)
	if len(e.Fields) != 2 || e.Fields[0].Field != "crlf" || e.Fields[0].Code != "invalid_characters" ||
		e.Fields[1].Field != "long" || e.Fields[1].Code != "too_long" {
		t.Fatalf("%+v", e.Fields)
	}
}
