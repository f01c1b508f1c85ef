package message

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// The estimate never undercounts, and for attachment-heavy messages it is
// within 10% plus 4 KiB of the real size.
func TestSizeBound(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(42, 7))}
	for i := range 400 {
		attach := 2 << 10
		if i%4 == 0 {
			attach = 300 << 10
		}
		r := g.request(attach)
		if err := r.Validate(Limits{}); err != nil {
			t.Fatalf("request %d: generator made an invalid request: %v", i, err)
		}
		h := g.header(r)
		var b bytes.Buffer
		if err := Compose(&b, r, h); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if err := checkWire(b.Bytes()); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		actual, est := int64(b.Len()), estimateSize(r)
		if actual > est {
			t.Fatalf("request %d: composed %d bytes, more than the estimate %d\n%s", i, actual, est, b.Bytes())
		}
		var attached int64
		for _, a := range r.Attachments {
			attached += int64(len(a.Content))
		}
		if attached > 64<<10 && float64(est) > 1.1*float64(actual)+4096 {
			t.Errorf("request %d: estimate %d is loose for %d bytes", i, est, actual)
		}
		// Validate applies the same bound.
		if err := r.Validate(Limits{MaxMessageBytes: est}); err != nil {
			t.Errorf("request %d: refused at a limit of its estimate: %v", i, err)
		}
		field := "text"
		if len(r.Attachments) > 0 {
			field = "attachments"
		}
		if fs := fieldErrors(t, r, Limits{MaxMessageBytes: est - 1}); !hasField(fs, field, codeTooLarge) {
			t.Errorf("request %d: accepted below its estimate: %+v", i, fs)
		}
	}
}

// Each text encoding's size is exact (7bit, base64) or bounded
// (quoted-printable) on texts built to stress it.
func TestTextSizes(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(3, 4))}
	for i := range 2000 {
		s := g.text(3000)
		st := scanText(s)
		enc, size := st.encoding()
		var b bytes.Buffer
		if err := writeText(&b, s, st); err != nil {
			t.Fatal(err)
		}
		got := int64(b.Len())
		if got > size || (enc != encQuotedPrintable && got != size) {
			t.Fatalf("text %d (%s): %d bytes, estimate %d", i, enc, got, size)
		}
	}
}
