package console

import (
	"maps"
	"slices"
	"testing"
)

func TestCataloguesHaveTheSameKeys(t *testing.T) {
	en := slices.Sorted(maps.Keys(english))
	for name, l := range locales {
		for _, k := range en {
			if l.messages[k] == "" {
				t.Errorf("%s: no %q", name, k)
			}
		}
		for k := range l.messages {
			if _, ok := english[k]; !ok {
				t.Errorf("%s: %q is not in English", name, k)
			}
		}
	}
}

func TestPickLocale(t *testing.T) {
	for _, c := range []struct{ query, accept, want string }{
		{"", "ar-EG,ar;q=0.9", "ar"}, {"", "fr,en;q=0.5", "en"}, {"en", "ar", "en"}, {"ar", "", "ar"}, {"xx", "", "en"},
	} {
		if got := pickLocale(c.query, c.accept).tag; got != c.want {
			t.Errorf("pickLocale(%q, %q) = %s, want %s", c.query, c.accept, got, c.want)
		}
	}
}
