package lang

import "testing"

func TestPick(t *testing.T) {
	for _, c := range []struct{ named, accept, want string }{
		{"ar", "en-US,en;q=0.9", "ar"},        // a named locale wins
		{"", "ar-EG,ar;q=0.9,en;q=0.5", "ar"}, // else the browser's
		{"", "fr-FR,fr;q=0.9", "en"},          // none matches: English
		{"xx", "", "en"},                      // unknown name, no header
		{"", "not a header;;;", "en"},
	} {
		if got := Pick(c.named, c.accept); got != c.want {
			t.Errorf("Pick(%q, %q) = %s, want %s", c.named, c.accept, got, c.want)
		}
	}
	if Known("fr") || !Known("ar") {
		t.Error("Known disagrees with Supported")
	}
}
