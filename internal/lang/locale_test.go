package lang

import (
	"slices"
	"testing"
)

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

// A catalogue's words: each language's tag and direction, a message with
// its arguments, English for a key a language lacks, the key itself for
// one no language has, and a message's lines.
func TestCatalogue(t *testing.T) {
	c := NewCatalogue(map[string]map[string]string{
		"en": {"hello": "Hello, %s", "only.en": "English", "steps": "one\ntwo"},
		"ar": {"hello": "مرحبا، %s", "steps": "واحد\nاثنان"},
	})
	en, ar := c.Pick("", "fr"), c.Pick("ar", "")
	if en.Tag != "en" || en.Dir != "ltr" || ar.Tag != "ar" || ar.Dir != "rtl" {
		t.Fatalf("en %s/%s, ar %s/%s", en.Tag, en.Dir, ar.Tag, ar.Dir)
	}
	for _, tc := range []struct{ got, want string }{
		{ar.Text("hello", "Sara"), "مرحبا، Sara"},
		{en.Text("hello", "Sara"), "Hello, Sara"},
		{ar.Text("only.en"), "English"},
		{ar.Text("missing"), "missing"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if lines := ar.Lines("steps"); len(lines) != 2 || lines[1] != "اثنان" {
		t.Errorf("Lines = %q", lines)
	}
	if lines := ar.Lines("only.en"); lines != nil {
		t.Errorf("Lines of a key Arabic lacks = %q, want none (the English steps would read as Arabic's)", lines)
	}
}

// Differences names each way a language strays from English.
func TestDifferences(t *testing.T) {
	same := map[string]map[string]string{
		"en": {"a": "A %s", "b": "one\ntwo"},
		"ar": {"a": "أ %s", "b": "واحد\nاثنان"},
	}
	if d := Differences(same); len(d) != 0 {
		t.Fatalf("the same keys: %q", d)
	}
	stray := map[string]map[string]string{
		"en": {"a": "A %s", "b": "one\ntwo", "c": "C"},
		"ar": {"a": "أ", "b": "واحد", "d": "د"},
	}
	want := []string{`ar lacks "c"`, `ar "a" has other verbs than English's: "أ"`,
		`ar "b" has another number of lines than English's`, `ar has "d", which English lacks`}
	if d := Differences(stray); !slices.Equal(d, want) {
		t.Errorf("Differences = %q\nwant %q", d, want)
	}
	if d := Differences(map[string]map[string]string{"en": {"a": "A"}}); !slices.Equal(d, []string{"ar: no messages"}) {
		t.Errorf("no Arabic: %q", d)
	}
}
