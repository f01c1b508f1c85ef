package connect

import (
	"slices"
	"strings"
	"testing"

	"github.com/outbound-mail/outbound/internal/provider"
)

// Every locale says everything English says, and nothing else: a key
// missing in one would show English (or the key) in the middle of a page.
func TestCataloguesHaveTheSameKeys(t *testing.T) {
	for name, l := range locales {
		for k := range english {
			if _, ok := l.messages[k]; !ok {
				t.Errorf("%s lacks %q", name, k)
			}
		}
		for k, m := range l.messages {
			if _, ok := english[k]; !ok {
				t.Errorf("%s has %q, which English lacks", name, k)
			}
			if strings.Count(m, "%") != strings.Count(english[k], "%") {
				t.Errorf("%s %q has other verbs than English's: %q", name, k, m)
			}
			if strings.Count(m, "\n") != strings.Count(english[k], "\n") {
				t.Errorf("%s %q has another number of steps than English's", name, k)
			}
		}
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
	if lines := locales["en"].lines("steps.gmail"); len(lines) != 4 || !strings.Contains(lines[3], "16 letters") {
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
		if got := pickLocale(c.link, c.accept).tag; got != c.want {
			t.Errorf("pickLocale(%q, %q) = %s, want %s", c.link, c.accept, got, c.want)
		}
	}
	if locales["ar"].dir != "rtl" || locales["en"].dir != "ltr" {
		t.Error("directions")
	}
	if !slices.Contains([]string{"en", "ar"}, pickLocale("xx", "").tag) {
		t.Error("unknown link locale")
	}
}
