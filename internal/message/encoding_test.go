package message

import (
	"bytes"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"mime"
	"strings"
	"testing"
	"unicode/utf8"
)

// unfold undoes RFC 5322 folding: it removes every CRLF that is followed
// by a space or tab.
func unfold(s string) string {
	return strings.NewReplacer("\r\n ", " ", "\r\n\t", "\t").Replace(s)
}

func TestAppendField(t *testing.T) {
	values := []string{
		"", "short", "a  b", " lead", "trail ", "tab\there",
		strings.Repeat("word ", 100),
		strings.Repeat("x", 997),
		strings.Repeat("x", 500) + " " + strings.Repeat("y", 500),
		"<mailto:u@example.com>, <https://example.com/unsubscribe?id=" + strings.Repeat("9", 90) + ">",
	}
	names := []string{"X-A", "X-" + strings.Repeat("n", 74)}
	for _, name := range names {
		for _, v := range values {
			out := string(appendField(nil, name, v, false))
			if !strings.HasSuffix(out, "\r\n") {
				t.Fatalf("%q does not end in CRLF", out)
			}
			if got := unfold(strings.TrimSuffix(out, "\r\n")); got != name+": "+v {
				t.Errorf("unfolded %q, want %q", got, name+": "+v)
			}
			for i, line := range strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n") {
				if len(line) > maxLineOctets {
					t.Errorf("%s: line of %d octets", name, len(line))
				}
				// The first word stays on the name's line; after that a
				// long line holds a single word.
				if i > 0 && len(line) > maxSoftLine && strings.ContainsAny(strings.TrimLeft(line, " \t"), " \t") {
					t.Errorf("line of %d characters could have been folded: %q", len(line), line)
				}
			}
		}
	}
}

func TestEncodedWords(t *testing.T) {
	dec := new(mime.WordDecoder)
	values := []string{
		"فاتورة رقم 42",
		strings.Repeat("فاتورة رقم 42 ", 60),
		"café crème " + strings.Repeat("é", 200),
		strings.Repeat("🎉", 250),
		"=?utf-8?q?looks_encoded?=",
		"  spaces  and\ttabs  ",
		strings.Repeat("x", 998),
		"a_b=c?d",
	}
	for _, v := range values {
		out := string(appendField(nil, "Subject", v, true))
		lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
		for i, line := range lines {
			if len(line) > maxEncodedLine {
				t.Errorf("line %d of %d characters: %q", i, len(line), line)
			}
			for _, w := range strings.Fields(strings.TrimPrefix(line, "Subject:")) {
				if len(w) > maxEncodedWord {
					t.Errorf("encoded-word of %d characters", len(w))
				}
				// Each word holds whole characters (RFC 2047 section 5).
				d, err := dec.Decode(w)
				if err != nil || !utf8.ValidString(d) {
					t.Errorf("word %q decodes to %q, %v", w, d, err)
				}
			}
		}
		got, err := dec.DecodeHeader(unfold(strings.TrimPrefix(strings.TrimSuffix(out, "\r\n"), "Subject: ")))
		if err != nil || got != v {
			t.Errorf("decoded %q, %v; want %q", got, err, v)
		}
	}
	// B for mostly non-ASCII, Q for mostly ASCII.
	if out := appendField(nil, "S", "فاتورة", true); !bytes.Contains(out, []byte("?b?")) {
		t.Errorf("Arabic in %q", out)
	}
	if out := appendField(nil, "S", "cafe crème", true); !bytes.Contains(out, []byte("?q?")) {
		t.Errorf("French in %q", out)
	}
}

func TestPlainUnstructured(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "Invoice 42": true, "a  b": false, " a": false, "a ": false, "a\tb": false,
		"é": false, "=?x?=": false, strings.Repeat("x", maxPlainToken): true, strings.Repeat("x", maxPlainToken+1): false,
	} {
		if got := plainUnstructured(s); got != want {
			t.Errorf("plainUnstructured(%q) = %v", s, got)
		}
	}
}

func TestContentDisposition(t *testing.T) {
	long := strings.Repeat("ف", 400) + ".pdf" // past maxFilename: only continuations fit
	names := []string{
		"invoice.pdf", arabicFilename, `a "b" \c.txt`, "a  b", "tab\tname", strings.Repeat("ف", 127) + ".",
		strings.Repeat("%", 255), "x=?y?=z", "日本語のファイル名.xlsx", long, strings.Repeat("a b", 400),
		strings.Repeat("🎉", 300),
	}
	var raws [][]byte
	for _, name := range names {
		out := string(appendContentDisposition(nil, name))
		for _, line := range strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n") {
			if len(line) > maxLineOctets {
				t.Errorf("%q: line of %d octets", name, len(line))
			}
			if !utf8.ValidString(line) || strings.ContainsFunc(line, func(r rune) bool { return r > '~' }) {
				t.Errorf("%q: non-ASCII line %q", name, line)
			}
		}
		// One parameter: plain or extended, continued only past 998 octets.
		continued := strings.Contains(out, "filename*0*=")
		if n := strings.Count(out, "filename"); n != 1 && !continued {
			t.Errorf("%q: %d filename parameters in %q", name, n, out)
		}
		if continued != (len(name) > 300) { // only the long ones need more than one line

			t.Errorf("%q: continued %v in %q", name, continued, out)
		}
		v := strings.TrimPrefix(unfold(strings.TrimSuffix(out, "\r\n")), "Content-Disposition: ")
		disp, params, err := mime.ParseMediaType(v)
		if err != nil || disp != "attachment" || params["filename"] != name {
			t.Errorf("%q: ParseMediaType(%q) = %q %q %v", name, v, disp, params["filename"], err)
		}
		raws = append(raws, []byte("MIME-Version: 1.0\r\nContent-Type: application/pdf\r\n"+out+"\r\nx\r\n"))
	}
	for i, m := range pythonRead(t, raws...) {
		for policy, read := range m {
			if len(read.Parts) != 1 || deref(read.Parts[0].Filename) != names[i] || len(read.Parts[0].Defects) > 0 {
				t.Errorf("%q, Python %s: read %+v", names[i], policy, read.Parts)
			}
		}
	}
}

func TestBase64DecodedLen(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 4, 3071, 3072, 3073, 3074, 6144, 100000} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		enc := base64.StdEncoding.EncodeToString(data)
		for _, form := range []struct{ name, s string }{
			{"plain", enc},
			{"MIME lines", wrap(enc, 76, "\r\n")},
			{"LF lines", wrap(enc, 64, "\n") + "\n"},
			{"spaces", wrap(enc, 7, " ")},
		} {
			got, err := base64DecodedLen(form.s)
			if err != nil || got != int64(n) {
				t.Errorf("%d bytes, %s: got %d, %v", n, form.name, got, err)
			}
			dec, err := io.ReadAll(newContentReader(form.s))
			if err != nil || !bytes.Equal(dec, data) {
				t.Errorf("%d bytes, %s: reader gives %d bytes, %v", n, form.name, len(dec), err)
			}
		}
	}
	// Padding at the very end of a 4096-character chunk, then more data.
	chunk := strings.Repeat("A", 4092) + "QQ=="
	for _, s := range []string{chunk + "QUJD", "QQ==QUJD", "QQ=", "Q===", "QQ==\r\nQQ==", "A", "!!!!", "QUJD\t", "QU JD="} {
		if _, err := base64DecodedLen(s); err == nil {
			t.Errorf("base64DecodedLen(%.20q...) accepted", s)
		}
	}
	if n, err := base64DecodedLen(chunk); err != nil || n != 4092/4*3+1 {
		t.Errorf("chunk ending in padding: %d, %v", n, err)
	}
}

func wrap(s string, n int, sep string) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n])
		b.WriteString(sep)
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}
