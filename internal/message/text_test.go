package message

import (
	"strings"
	"testing"
)

// TestScanText pins the statistics of texts that mix runs of plain bytes
// with each kind of byte that ends a run.
func TestScanText(t *testing.T) {
	cases := map[string]textStats{
		"":                 {},
		"plain words only": {n: 16, maxLine: 16, qpChars: 16},
		"a=b\r\nc\td \n":   {n: 10, breakLen: 3, breaks: 2, maxLine: 4, qpChars: 9},
		"\u00e9\x00x":      {n: 4, nonASCII: 2, maxLine: 4, qpChars: 10, nul: true},
		"\r\rab":           {n: 4, breakLen: 2, breaks: 2, maxLine: 2, qpChars: 2},
		"ab\n" + strings.Repeat("x", 1000) + "\r\n=": {n: 1006, breakLen: 3, breaks: 2, maxLine: 1000, qpChars: 1005},
	}
	for text, want := range cases {
		if got := scanText(text); got != want {
			t.Errorf("%q:\n got %+v\nwant %+v", text, got, want)
		}
	}
}

// TestWriteCanonical checks each kind of line break, and breaks that fall
// on the edge of the copy buffer, against a byte-by-byte rewrite.
func TestWriteCanonical(t *testing.T) {
	edge := strings.Repeat("x", 16<<10-1)
	for _, s := range []string{
		"", "no break", "a\nb", "a\r\nb", "a\rb", "\n\n", "\r\r\n\n\r", "ends with CR\r", "ends with LF\n",
		edge + "\r\n" + edge + "\n" + edge + "\r" + edge + "\r\n",
		strings.Repeat("line\r", 5000) + strings.Repeat("line\n", 5000),
	} {
		var want strings.Builder
		for i := 0; i < len(s); i++ {
			switch {
			case s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n':
				want.WriteString("\r\n")
				i++
			case s[i] == '\r' || s[i] == '\n':
				want.WriteString("\r\n")
			default:
				want.WriteByte(s[i])
			}
		}
		var got strings.Builder
		if err := writeCanonical(&got, s); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%.40q...: got %d bytes, want %d", s, got.Len(), want.Len())
		}
	}
}
