// Package lang chooses the language a page speaks: the one a link or a
// query names when the pages are written in it, else the browser's best
// match (Accept-Language), else English.
package lang

import (
	"slices"

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
