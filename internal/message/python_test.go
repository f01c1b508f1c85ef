package message

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"github.com/outbound-mail/outbound/internal/pyrun"
)

// pyMessage is one message as testdata/read_mail.py reports it, under
// Python's two email policies ("default" and "compat32").
type pyMessage map[string]pyRead

type pyRead struct {
	To       [][2]string `json:"to"`        // [display name, address]
	Cc       [][2]string `json:"cc"`        // [display name, address]
	ToFields int         `json:"to_fields"` // how many To fields the header has
	Parts    []pyPart    `json:"parts"`
	Defects  []string    `json:"defects"`
}

type pyPart struct {
	Type     string   `json:"type"`
	Content  *string  `json:"content"`  // text parts only
	Filename *string  `json:"filename"` // get_filename()
	Name     *string  `json:"name"`     // the Content-Type name parameter
	Defects  []string `json:"defects"`
}

// pythonRead parses each raw message with Python's email package, a reader
// no one here wrote (python3 is on every machine this runs on).
func pythonRead(t *testing.T, raws ...[]byte) []pyMessage {
	t.Helper()
	script, err := os.ReadFile(filepath.Join("testdata", "read_mail.py"))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []pyMessage
	pyrun.JSON(t, "read_mail.py", string(script), nil, &msgs, pyrun.Files(t, raws...)...)
	return msgs
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

// TestAttachmentNamesReadAlike composes attachments with names of every
// shape and checks that Python's email package (both policies) and
// go-message read the same name from Content-Disposition's filename and
// Content-Type's name, with no defect recorded.
func TestAttachmentNamesReadAlike(t *testing.T) {
	names := []string{
		"invoice-42.pdf",
		arabicFilename,
		"فاتورة-42.pdf",
		"😀 party 🎉.png",
		strings.Repeat("ف", 127) + ".", // 255 bytes, the longest allowed
		strings.Repeat("🎉", 63) + ".a", // 254 bytes
		`a "quoted"; name=x.pdf`,
		`semi;colon=and\back.txt`,
		"x=?utf-8?q?y?=z.txt",
		"two  spaces and a\ttab.txt", // Python strips a leading or trailing space itself
		"日本語のファイル名.xlsx",
	}
	var raws [][]byte
	for _, name := range names {
		r := mustExample(t)
		r.Attachments[0].Filename = name
		if err := r.Validate(Limits{}); err != nil {
			t.Fatalf("%q: Validate: %v", name, err)
		}
		raw := mustCompose(t, r, headerFor(r))
		if err := checkWire(raw); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		raws = append(raws, raw)
	}
	msgs := pythonRead(t, raws...)
	for i, name := range names {
		for _, policy := range []string{"default", "compat32"} {
			var att *pyPart
			for j := range msgs[i][policy].Parts {
				if p := &msgs[i][policy].Parts[j]; p.Type == "application/pdf" {
					att = p
				}
			}
			if att == nil {
				t.Errorf("%q, Python %s: no attachment part", name, policy)
				continue
			}
			if got := deref(att.Filename); got != name {
				t.Errorf("%q, Python %s: get_filename() = %q", name, policy, got)
			}
			if got := deref(att.Name); got != name {
				t.Errorf("%q, Python %s: Content-Type name = %q", name, policy, got)
			}
			if len(att.Defects) > 0 {
				t.Errorf("%q, Python %s: defects %v", name, policy, att.Defects)
			}
		}
		filename, ctName, err := goMessageNames(raws[i])
		if strings.Contains(name, "=?") {
			// go-message decodes RFC 2047 inside every parameter, the
			// already-decoded RFC 2231 value included, so a name that
			// itself holds an encoded-word cannot come back from its
			// filename: its quirk, not the message's.
			filename = name
		}
		if err != nil || filename != name || ctName != name {
			t.Errorf("%q, go-message: filename %q, Content-Type name %q, %v", name, filename, ctName, err)
		}
	}
}

// goMessageNames reads the first attachment's filename and Content-Type
// name with go-message.
func goMessageNames(raw []byte) (filename, name string, err error) {
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return "", "", err
	}
	for {
		part, err := mr.NextPart()
		if err != nil {
			return "", "", err
		}
		if h, ok := part.Header.(*mail.AttachmentHeader); ok {
			_, params, err := h.ContentType()
			if err != nil {
				return "", "", err
			}
			filename, err := h.Filename()
			return filename, params["name"], err
		}
	}
}

// TestRepeatedRecipientsWrittenOnce lists recipients many times, in
// different cases, across To and Cc: each is written once, where it first
// appears, with its first spelling, and the header stays small.
func TestRepeatedRecipientsWrittenOnce(t *testing.T) {
	r := mustExample(t)
	r.To = nil
	for i := range 2000 {
		r.To = append(r.To, Address{Name: "Client", Email: "client@example.com"},
			Address{Email: "CLIENT@Example.COM"}, Address{Name: "Ann", Email: "ann" + fmt.Sprint(i%3) + "@example.com"})
	}
	r.Cc = []Address{{Email: "Ann1@EXAMPLE.com"}, {Name: "Bob", Email: "bob@example.com"}, {Email: "bob@example.com"}}
	if err := r.Validate(Limits{}); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	raw := mustCompose(t, r, headerFor(r))
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	if len(head) > 4096 {
		t.Errorf("header of %d bytes", len(head))
	}
	wantTo := [][2]string{{"Client", "client@example.com"}, {"Ann", "ann0@example.com"},
		{"Ann", "ann1@example.com"}, {"Ann", "ann2@example.com"}}
	wantCc := [][2]string{{"Bob", "bob@example.com"}}
	for policy, read := range pythonRead(t, raw)[0] {
		if fmt.Sprint(read.To) != fmt.Sprint(wantTo) || read.ToFields != 1 {
			t.Errorf("Python %s: To %q in %d fields, want %q", policy, read.To, read.ToFields, wantTo)
		}
		if fmt.Sprint(read.Cc) != fmt.Sprint(wantCc) {
			t.Errorf("Python %s: Cc %q, want %q", policy, read.Cc, wantCc)
		}
	}
	if got := r.Recipients(); len(got) != 6 { // 4 in To, bob, and the Bcc
		t.Errorf("Recipients() = %q", got)
	}
}

// TestHTMLOnlyGetsTextAlternative: a request with HTML and no text goes out
// as multipart/alternative, a text part generated from the HTML first, and
// Python's email package reads that text.
func TestHTMLOnlyGetsTextAlternative(t *testing.T) {
	html := `<html><head><style>p{margin:0}</style></head><body><h1>Invoice &#8470; 42</h1>` +
		`<p>Dear client,<br>your invoice is <a href="https://acme.example/i/42">ready</a>.</p>` +
		`<ul><li>Tea &amp; cakes</li><li>فاتورة</li></ul><script>track()</script></body></html>`
	want := "Invoice № 42\n\nDear client,\nyour invoice is ready <https://acme.example/i/42>.\n\n" +
		"- Tea & cakes\n- فاتورة"
	for _, withAttachment := range []bool{false, true} {
		r := mustExample(t)
		r.Text, r.HTML = "", html
		if !withAttachment {
			r.Attachments = nil
		}
		if err := r.Validate(Limits{}); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		raw := mustCompose(t, r, headerFor(r))
		if est := estimateSize(r); int64(len(raw)) > est {
			t.Errorf("composed %d bytes, estimate %d", len(raw), est)
		}
		tree := mediaTree(t, raw)
		wantTree := "multipart/alternative(text/plain,text/html)"
		if withAttachment {
			wantTree = "multipart/mixed(" + wantTree + ",application/pdf)"
		}
		if tree != wantTree {
			t.Errorf("structure %s, want %s", tree, wantTree)
		}
		for policy, read := range pythonRead(t, raw)[0] {
			if len(read.Parts) < 2 || read.Parts[0].Type != "text/plain" || read.Parts[1].Type != "text/html" {
				t.Errorf("Python %s: parts %+v", policy, read.Parts)
				continue
			}
			if got := strings.ReplaceAll(deref(read.Parts[0].Content), "\r\n", "\n"); got != want {
				t.Errorf("Python %s: text part %q, want %q", policy, got, want)
			}
			if got := deref(read.Parts[1].Content); !strings.Contains(got, "<h1>Invoice &#8470; 42</h1>") {
				t.Errorf("Python %s: html part %q", policy, got)
			}
		}
	}
}
