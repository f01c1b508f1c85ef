package message

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// withTextAlternative returns r, or for a request with HTML and no text a
// shallow copy whose Text is htmlToText(r.HTML), so that the message goes
// out as multipart/alternative with a readable text part first (RFC 2046
// section 5.1.4): an HTML-only message is what spam filters score as
// MIME_HTML_ONLY, and what text-only readers cannot read. HTML without any
// text (an image alone, say) stays HTML only. Validate and Compose both
// start here, so the size checked is the size sent.
func (r *Request) withTextAlternative() *Request {
	if r.Text != "" || r.HTML == "" {
		return r
	}
	text := htmlToText(r.HTML)
	if text == "" {
		return r
	}
	alt := *r
	alt.Text = text
	return &alt
}

// htmlToText renders HTML as plain text, the way a person would retype it:
//
//   - block elements (p, div, headings, tables, rows, list items, ...)
//     start new lines, paragraphs, headings, lists, tables, quotes and
//     pre start paragraphs (a blank line); <br> is a line break; <hr> a
//     line of dashes;
//   - whitespace runs collapse to one space, except inside <pre>;
//   - list items begin "- ", or "1. ", "2. " in an ordered list, indented
//     two spaces per level of nesting; table cells are separated by a
//     space;
//   - a link reads "text <url>" (RFC 3986 appendix C's delimiters), just
//     "text" when the text is the address already, and a link to a
//     fragment or to javascript: is its text alone;
//   - an image is its alt text;
//   - entities are decoded (&amp;, &eacute;, &#x1F600;, a non-breaking
//     space as a space);
//   - script, style, title, template and svg content is dropped, and so
//     are comments.
//
// The output has "\n" line breaks (Compose writes them as CRLF), no
// trailing spaces and no leading or trailing blank lines.
func htmlToText(src string) string {
	z := html.NewTokenizer(strings.NewReader(src))
	var w textWriter
	for {
		switch z.Next() {
		case html.ErrorToken: // io.EOF: the tokenizer reads a string
			return w.String()
		case html.TextToken:
			if w.skip == 0 {
				w.text(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			var attrs map[string]string
			if hasAttr && (a == atom.A || a == atom.Img) {
				attrs = tagAttrs(z)
			}
			w.start(a, attrs)
		case html.EndTagToken:
			name, _ := z.TagName()
			w.end(atom.Lookup(name))
		}
	}
}

// tagAttrs reads the current tag's attributes, lower-case names.
func tagAttrs(z *html.Tokenizer) map[string]string {
	attrs := map[string]string{}
	for {
		k, v, more := z.TagAttr()
		attrs[string(k)] = string(v)
		if !more {
			return attrs
		}
	}
}

// Block elements start a line; paragraph elements start a paragraph.
var (
	lineElements = map[atom.Atom]bool{
		atom.Address: true, atom.Article: true, atom.Aside: true, atom.Center: true, atom.Dd: true,
		atom.Details: true, atom.Dialog: true, atom.Div: true, atom.Dt: true, atom.Fieldset: true,
		atom.Figcaption: true, atom.Footer: true, atom.Form: true, atom.Header: true, atom.Hgroup: true,
		atom.Li: true, atom.Main: true, atom.Menu: true, atom.Nav: true, atom.Section: true,
		atom.Summary: true, atom.Tr: true, atom.Caption: true, atom.Tbody: true, atom.Thead: true,
		atom.Tfoot: true, atom.Legend: true, atom.Option: true,
	}
	paragraphElements = map[atom.Atom]bool{
		atom.P: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true,
		atom.H6: true, atom.Blockquote: true, atom.Pre: true, atom.Table: true, atom.Ul: true,
		atom.Ol: true, atom.Dl: true, atom.Figure: true,
	}
	droppedElements = map[atom.Atom]bool{
		atom.Script: true, atom.Style: true, atom.Title: true, atom.Template: true, atom.Svg: true,
	}
)

// textWriter accumulates the text. Line breaks asked for by block
// elements are held in pending and written only before the next text, so
// that nested and empty blocks never stack blank lines.
type textWriter struct {
	b        strings.Builder
	pending  int  // line breaks wanted before the next text
	trailing int  // line breaks at the end of b
	space    bool // whitespace seen since the last text
	skip     int  // depth inside dropped elements
	pre      int  // depth inside <pre>
	cell     bool // a table cell ended on this row
	lists    []list
	links    []link
}

type list struct {
	ordered bool
	n       int
}

type link struct {
	href  string
	start int // where its text begins in b
}

func (w *textWriter) String() string {
	lines := strings.Split(w.b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

// brk asks for n line breaks (1: a new line, 2: a blank line) before the
// next text.
func (w *textWriter) brk(n int) {
	w.pending = max(w.pending, n)
	w.space, w.cell = false, false
}

// newline writes a line break at once (<br>): two in a row are a blank
// line.
func (w *textWriter) newline() {
	w.b.WriteByte('\n')
	w.trailing++
	w.pending, w.space = 0, false
}

// write writes s, which holds no line break, after the breaks and the
// space pending.
func (w *textWriter) write(s string) {
	if w.b.Len() > 0 {
		for ; w.trailing < w.pending; w.trailing++ {
			w.b.WriteByte('\n')
		}
		if w.space && w.trailing == 0 {
			w.b.WriteByte(' ')
		}
	}
	w.pending, w.space = 0, false
	w.b.WriteString(s)
	w.trailing = 0
}

// text writes a text token: whitespace collapsed, or as is inside <pre>.
func (w *textWriter) text(s string) {
	s = strings.ReplaceAll(s, "\u00a0", " ")
	if w.pre > 0 {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
		for i, line := range strings.Split(s, "\n") {
			if i > 0 {
				w.newline()
			}
			if line != "" {
				w.write(line)
			}
		}
		return
	}
	if w.cell {
		w.space, w.cell = true, false
	}
	if s != "" && isHTMLSpace(s[0]) {
		w.space = true
	}
	words := strings.FieldsFunc(s, func(r rune) bool { return r < 0x80 && isHTMLSpace(byte(r)) })
	for i, word := range words {
		if i > 0 {
			w.space = true
		}
		w.write(word)
	}
	if s != "" && isHTMLSpace(s[len(s)-1]) {
		w.space = true
	}
}

// isHTMLSpace reports ASCII whitespace as HTML defines it.
func isHTMLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

func (w *textWriter) start(a atom.Atom, attrs map[string]string) {
	switch {
	case droppedElements[a]:
		w.skip++
		return
	case w.skip > 0:
		return
	}
	switch a {
	case atom.Br:
		w.newline()
	case atom.Hr:
		w.brk(2)
		w.write("----------")
		w.brk(2)
	case atom.Pre:
		w.pre++
	case atom.Ul, atom.Ol:
		w.lists = append(w.lists, list{ordered: a == atom.Ol})
	case atom.Td, atom.Th:
		// A cell after another on the same row is set off by a space.
	case atom.Img:
		if alt := strings.TrimSpace(attrs["alt"]); alt != "" {
			w.text(alt)
		}
	case atom.A:
		w.links = append(w.links, link{href: strings.TrimSpace(attrs["href"]), start: w.b.Len()})
	}
	switch {
	case a == atom.Li:
		w.brk(1)
		w.write(w.bullet())
	case paragraphElements[a] && !(len(w.lists) > 1 && (a == atom.Ul || a == atom.Ol)):
		w.brk(2)
	case lineElements[a] || a == atom.Ul || a == atom.Ol:
		w.brk(1)
	}
}

// bullet is the next list item's prefix: "- " or "N. ", indented by the
// nesting.
func (w *textWriter) bullet() string {
	if len(w.lists) == 0 {
		return "- "
	}
	l := &w.lists[len(w.lists)-1]
	indent := strings.Repeat("  ", len(w.lists)-1)
	if !l.ordered {
		return indent + "- "
	}
	l.n++
	return indent + strconv.Itoa(l.n) + ". "
}

func (w *textWriter) end(a atom.Atom) {
	if droppedElements[a] {
		w.skip = max(0, w.skip-1)
		return
	}
	if w.skip > 0 {
		return
	}
	switch a {
	case atom.Pre:
		w.pre = max(0, w.pre-1)
	case atom.Ul, atom.Ol:
		if len(w.lists) > 0 {
			w.lists = w.lists[:len(w.lists)-1]
		}
	case atom.Td, atom.Th:
		w.cell = true
		return
	case atom.A:
		w.endLink()
	}
	switch {
	case paragraphElements[a] && !(len(w.lists) > 0 && (a == atom.Ul || a == atom.Ol)):
		w.brk(2)
	case lineElements[a] || paragraphElements[a]:
		w.brk(1)
	}
}

// endLink appends " <url>" after a link's text, unless the text says the
// address already or the link leads nowhere a reader could follow.
func (w *textWriter) endLink() {
	if len(w.links) == 0 {
		return
	}
	l := w.links[len(w.links)-1]
	w.links = w.links[:len(w.links)-1]
	href := l.href
	lower := strings.ToLower(href)
	if href == "" || strings.HasPrefix(href, "#") || strings.HasPrefix(lower, "javascript:") {
		return
	}
	text := strings.TrimSpace(w.b.String()[min(l.start, w.b.Len()):])
	if text == href || "mailto:"+text == href || strings.TrimRight(text, "/") == strings.TrimRight(href, "/") {
		return
	}
	if text == "" {
		w.write("<" + href + ">")
		return
	}
	w.space = true
	w.write("<" + href + ">")
}
