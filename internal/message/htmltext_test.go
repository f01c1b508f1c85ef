package message

import "testing"

func TestHTMLToText(t *testing.T) {
	tests := []struct{ name, html, want string }{
		{"paragraphs and breaks", "<p>First   paragraph\nwith  spaces.</p><p>Second<br>line two</p>",
			"First paragraph with spaces.\n\nSecond\nline two"},
		{"entities", "<p>Tom &amp; Jerry &eacute;t&eacute; &#x1F600; &lt;tag&gt; a&nbsp;b</p>", "Tom & Jerry été 😀 <tag> a b"},
		{"scripts and styles dropped", `<html><head><title>T</title><style>p{color:red}</style>` +
			`<script>alert("x<y")</script></head><body><p>body</p><!-- note --></body></html>`, "body"},
		{"links", `<p>Visit <a href="https://example.com/a?b=1&amp;c=2">our site</a> now.</p>` +
			`<p><a href="https://example.com/">https://example.com</a> <a href="mailto:a@x.com">a@x.com</a> ` +
			`<a href="#top">top</a> <a href="javascript:void(0)">js</a></p>`,
			"Visit our site <https://example.com/a?b=1&c=2> now.\n\nhttps://example.com a@x.com top js"},
		{"lists", "<p>Items:</p><ul><li>one</li><li>two <b>bold</b><ol><li>first</li><li>second</li></ol></li></ul><p>after</p>",
			"Items:\n\n- one\n- two bold\n  1. first\n  2. second\n\nafter"},
		{"divs and tables", "<div>div1</div><div>div2</div><table><tr><td>Item</td><td>Price</td></tr>" +
			"<tr><td>Tea</td><td>3.00</td></tr></table>fin",
			"div1\ndiv2\n\nItem Price\nTea 3.00\n\nfin"},
		{"headings and rule", "<h1>Title</h1>text<hr>more", "Title\n\ntext\n\n----------\n\nmore"},
		{"pre keeps spaces", "<pre>  a  b\n    c</pre>", "  a  b\n    c"},
		{"image alt and links around images", `<a href="https://x.example/"><img src="logo.png" alt="Logo"></a>` +
			`<a href="https://y.example/"><img src="z.png"></a>`, "Logo <https://x.example/><https://y.example/>"},
		{"inline elements join", "a<b>b</b><i>c</i> <span>d</span>", "abc d"},
		{"no text", `<img src="x.png">`, ""},
		{"unclosed and stray tags", "<p>open<div>inner</p></li></ul>tail", "open\ninner\n\ntail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := htmlToText(tt.html); got != tt.want {
				t.Errorf("htmlToText(%q)\n got %q\nwant %q", tt.html, got, tt.want)
			}
		})
	}
}
