package connect

import (
	"slices"
	"strings"
	"testing"

	"github.com/outbound-mail/outbound/internal/lang"
	"github.com/outbound-mail/outbound/internal/provider"
)

// Every locale says everything English says, and nothing else: a key
// missing in one would show English (or the key) in the middle of a page.
func TestCataloguesHaveTheSameKeys(t *testing.T) {
	for _, d := range lang.Differences(messages) {
		t.Error(d)
	}
}

// Each provider of the table has its steps, so none falls back to the
// generic ones unnoticed.
func TestEveryProviderHasSteps(t *testing.T) {
	for _, p := range provider.All() {
		if english["steps."+p.Name] == "" {
			t.Errorf("no steps for %s", p.Name)
		}
	}
	if lines := catalogue["en"].Lines("steps.gmail"); len(lines) != 4 || !strings.Contains(lines[3], "16 letters") {
		t.Errorf("Gmail's steps: %q", lines)
	}
}

func TestPickLocale(t *testing.T) {
	cases := []struct{ link, accept, want string }{
		{"", "", "en"},
		{"", "ar-SA,ar;q=0.9,en;q=0.8", "ar"},
		{"", "fr-FR,fr;q=0.9", "en"},
		{"", "en-GB,ar;q=0.5", "en"},
		{"ar", "en-US", "ar"},
		{"en", "ar", "en"},
		{"", "not a header;;", "en"},
	}
	for _, c := range cases {
		if got := catalogue.Pick(c.link, c.accept).Tag; got != c.want {
			t.Errorf("catalogue.Pick(%q, %q) = %s, want %s", c.link, c.accept, got, c.want)
		}
	}
	if catalogue["ar"].Dir != "rtl" || catalogue["en"].Dir != "ltr" {
		t.Error("directions")
	}
	if !slices.Contains([]string{"en", "ar"}, catalogue.Pick("xx", "").Tag) {
		t.Error("unknown link locale")
	}
}
