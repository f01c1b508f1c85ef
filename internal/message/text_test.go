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
