// Package lang chooses the language a page speaks (the one a link or a
// query names when the pages are written in it, else the browser's best
// match for Accept-Language, else English) and holds a set of pages'
// words in each: their messages, the html lang and dir they go with, and
// the check that every language says what English says.
package lang

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"golang.org/x/text/language"
)

// Supported are the languages the pages are written in; English first,
// so it is the fallback.
var Supported = []string{"en", "ar"}

var matcher = func() language.Matcher {
	tags := make([]language.Tag, len(Supported))
	for i, s := range Supported {
		tags[i] = language.MustParse(s)
	}
	return language.NewMatcher(tags)
}()

// Known reports whether the pages are written in tag.
func Known(tag string) bool { return slices.Contains(Supported, tag) }

// Pick is named when it is known, else the best of Supported for the
// browser's Accept-Language.
func Pick(named, acceptLanguage string) string {
	if Known(named) {
		return named
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return Supported[0]
	}
	_, i, _ := matcher.Match(tags...)
	return Supported[i]
}

// rightToLeft are the Supported languages written right to left.
var rightToLeft = map[string]bool{"ar": true}

// Words are one language's messages for a set of pages.
type Words struct {
	Tag      string // the html lang attribute
	Dir      string // the html dir attribute: ltr or rtl
	messages map[string]string
	english  map[string]string // for a key messages lacks
}

// Catalogue is a set of pages' words in each Supported language.
type Catalogue map[string]Words

// NewCatalogue makes a catalogue from each Supported language's messages
// by key; a key one lacks is taken from English (each page's catalogue
// test holds them to the same keys).
func NewCatalogue(messages map[string]map[string]string) Catalogue {
	c := Catalogue{}
	for _, tag := range Supported {
		dir := "ltr"
		if rightToLeft[tag] {
			dir = "rtl"
		}
		c[tag] = Words{Tag: tag, Dir: dir, messages: messages[tag], english: messages["en"]}
	}
	return c
}

// Pick is the words of the language named when it is known, else of the
// browser's best match (see Pick).
func (c Catalogue) Pick(named, acceptLanguage string) Words {
	return c[Pick(named, acceptLanguage)]
}

// Text is the message for key, with args in its verbs as by fmt.Sprintf;
// a key no language has shows itself.
func (w Words) Text(key string, args ...any) string {
	m, ok := w.messages[key]
	if !ok {
		m, ok = w.english[key]
	}
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(m, args...)
	}
	return m
}

// Lines is a message of several lines (a provider's steps) as its lines,
// or nil when the language has no such key.
func (w Words) Lines(key string) []string {
	if _, ok := w.messages[key]; !ok {
		return nil
	}
	return strings.Split(w.Text(key), "\n")
}

// Differences lists how each Supported language's messages stray from
// English's: a key missing (English, or the key, would show in the middle
// of a page), a key English lacks, other verbs than English's, or another
// number of lines. A page's catalogue test wants none.
func Differences(messages map[string]map[string]string) []string {
	english := messages["en"]
	var out []string
	for _, tag := range Supported[1:] {
		m, ok := messages[tag]
		if !ok {
			out = append(out, tag+": no messages")
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(english)) {
			if _, ok := m[k]; !ok {
				out = append(out, fmt.Sprintf("%s lacks %q", tag, k))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			en, ok := english[k]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s has %q, which English lacks", tag, k))
			case strings.Count(m[k], "%") != strings.Count(en, "%"):
				out = append(out, fmt.Sprintf("%s %q has other verbs than English's: %q", tag, k, m[k]))
			case strings.Count(m[k], "\n") != strings.Count(en, "\n"):
				out = append(out, fmt.Sprintf("%s %q has another number of lines than English's", tag, k))
			}
		}
	}
	return out
}
