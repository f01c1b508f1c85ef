package message

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"time"
)

// gen makes random valid requests and route headers for property tests.
type gen struct{ rng *rand.Rand }

var genAlphabets = []string{
	"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789",
	`abc "quoted" \back\ (paren), <angle> @at; colon: .dot ='?_`,
	"فاتورة رقم الشركة المحدودة ",
	"🎉✅ 日本語 café ",
	"        \t",
	"=?utf-8?q?x?= ",
}

func (g gen) str(maxBytes int) string {
	alpha := []rune(genAlphabets[g.rng.IntN(len(genAlphabets))])
	n := g.rng.IntN(maxBytes + 1)
	var b strings.Builder
	for b.Len() < n {
		r := alpha[g.rng.IntN(len(alpha))]
		if b.Len()+len(string(r)) > maxBytes {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (g gen) email() string {
	local := []string{"a", "client", "first.last+tag", "x_y-z", strings.Repeat("l", g.rng.IntN(64)+1), "o'brien"}
	domain := []string{"example.com", "sub.example.co", strings.Repeat("d", g.rng.IntN(180)+1) + ".example"}
	return local[g.rng.IntN(len(local))] + "@" + domain[g.rng.IntN(len(domain))]
}

func (g gen) addresses(max int) []Address {
	as := make([]Address, g.rng.IntN(max+1))
	for i := range as {
		as[i] = Address{Name: g.str(maxName), Email: g.email()}
		if g.rng.IntN(3) == 0 {
			as[i].Name = ""
		}
	}
	return as
}

func (g gen) text(maxBytes int) string {
	var b strings.Builder
	n := g.rng.IntN(maxBytes + 1)
	breaks := []string{"\r\n", "\n", "\r", "\r\n\r\n"}
	for b.Len() < n {
		switch g.rng.IntN(4) {
		case 0:
			b.WriteString(breaks[g.rng.IntN(len(breaks))])
		case 1:
			b.WriteString(strings.Repeat("x", g.rng.IntN(1200)))
		default:
			b.WriteString(g.str(200))
		}
	}
	return b.String()
}

func (g gen) attachment(maxBytes int) Attachment {
	data := make([]byte, g.rng.IntN(maxBytes+1))
	for i := range data {
		data[i] = byte(g.rng.IntN(256))
	}
	content := base64.StdEncoding.EncodeToString(data)
	if g.rng.IntN(2) == 0 {
		content = wrap(content, 76, "\r\n")
	}
	types := []string{"", "application/pdf", `text/csv; charset="utf-8"; name="تقرير.csv"`, "image/png"}
	name := g.str(maxFilename)
	if strings.TrimSpace(name) == "" {
		name = "file.bin"
	}
	return Attachment{Filename: name, ContentType: types[g.rng.IntN(len(types))], Content: content}
}

// request returns a random valid request whose attachments weigh up to
// attachBytes each.
func (g gen) request(attachBytes int) *Request {
	r := &Request{
		TenantID: "acme",
		To:       g.addresses(4),
		Cc:       g.addresses(3),
		Bcc:      g.addresses(2),
		ReplyTo:  g.addresses(2),
		Subject:  g.str(maxSubject),
	}
	if len(r.To)+len(r.Cc)+len(r.Bcc) == 0 {
		r.Bcc = []Address{{Email: g.email()}}
	}
	switch g.rng.IntN(3) {
	case 0:
		r.Text = g.text(5000)
	case 1:
		r.HTML = g.text(5000)
	default:
		r.Text, r.HTML = g.text(5000), g.text(5000)
	}
	if r.Text == "" && r.HTML == "" {
		r.Text = "x"
	}
	for range g.rng.IntN(4) {
		r.Attachments = append(r.Attachments, g.attachment(attachBytes))
	}
	if n := g.rng.IntN(4); n > 0 {
		r.Headers = map[string]string{}
		for i := range n {
			name := "X-" + strings.Repeat("h", g.rng.IntN(70)+1) + string(rune('a'+i))
			v := g.str(maxHeaderValue)
			if g.rng.IntN(4) == 0 {
				v = strings.Repeat("v", g.rng.IntN(maxHeaderValue)+1)
			}
			r.Headers[name] = v
		}
	}
	return r
}

// header returns a route's header for r: its own From or the worst a route
// may choose, and r.ReplyTo, one other address, or both.
func (g gen) header(r *Request) Header {
	from := Address{Name: g.str(maxName), Email: g.email()}
	if g.rng.IntN(3) == 0 {
		from = Address{Name: strings.Repeat("ف", maxName/2), Email: strings.Repeat("l", 64) + "@" + strings.Repeat("d", 180) + ".example"}
	}
	replyTo := r.ReplyTo
	switch g.rng.IntN(3) {
	case 0:
		replyTo = []Address{{Name: g.str(maxName), Email: g.email()}}
	case 1:
		replyTo = append(append([]Address(nil), r.ReplyTo...), Address{Name: g.str(maxName), Email: g.email()})
	}
	return Header{From: from, ReplyTo: replyTo, MessageID: NewMessageID(from.Email),
		Date: time.Date(2025, 12, 31, 23, 59, 59, 0, time.FixedZone("", -9*3600-30*60))}
}
