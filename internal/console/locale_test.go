package console

import (
	"testing"

	"github.com/outbound-mail/outbound/internal/lang"
)

// Every locale says everything English says, and nothing else.
func TestCataloguesHaveTheSameKeys(t *testing.T) {
	for _, d := range lang.Differences(messages) {
		t.Error(d)
	}
}

func TestPickLocale(t *testing.T) {
	for _, c := range []struct{ query, accept, want string }{
		{"", "ar-EG,ar;q=0.9", "ar"}, {"", "fr,en;q=0.5", "en"}, {"en", "ar", "en"}, {"ar", "", "ar"}, {"xx", "", "en"},
	} {
		if got := catalogue.Pick(c.query, c.accept).Tag; got != c.want {
			t.Errorf("catalogue.Pick(%q, %q) = %s, want %s", c.query, c.accept, got, c.want)
		}
	}
}
