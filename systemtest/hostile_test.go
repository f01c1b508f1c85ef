package systemtest

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// TestHeaderInjectionRefused: CR, LF or NUL anywhere that could reach a
// header is a 422, and nothing reaches SMTP.
func TestHeaderInjectionRefused(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	cases := map[string]func(m map[string]any){
		"subject CRLF": func(m map[string]any) { m["subject"] = "Hi\r\nBcc: victim@example.com" },
		"subject LF":   func(m map[string]any) { m["subject"] = "Hi\nBcc: victim@example.com" },
		"subject NUL":  func(m map[string]any) { m["subject"] = "Hi\x00there" },
		"to name CRLF": func(m map[string]any) {
			m["to"] = []map[string]string{{"email": "a@example.com", "name": "A\r\nBcc: v@example.com"}}
		},
		"to email CRLF": func(m map[string]any) {
			m["to"] = []map[string]string{{"email": "a@example.com\r\nRCPT TO:<v@example.com>"}}
		},
		"from name CRLF":    func(m map[string]any) { m["from"] = map[string]string{"email": "acme@gmail.com", "name": "A\rB"} },
		"reply-to CRLF":     func(m map[string]any) { m["reply_to"] = []map[string]string{{"email": "r@example.com\n"}} },
		"header name CRLF":  func(m map[string]any) { m["headers"] = map[string]string{"X-A\r\nBcc": "v@example.com"} },
		"header name colon": func(m map[string]any) { m["headers"] = map[string]string{"X-A: b\r\nBcc": "v"} },
		"header value CRLF": func(m map[string]any) { m["headers"] = map[string]string{"X-Invoice": "42\r\nBcc: v@example.com"} },
		"reserved header":   func(m map[string]any) { m["headers"] = map[string]string{"bcc": "v@example.com"} },
		"filename CRLF": func(m map[string]any) {
			m["attachments"] = []map[string]string{{"filename": "a.pdf\r\nX: y", "content": "eA=="}}
		},
		"content type CRLF": func(m map[string]any) {
			m["attachments"] = []map[string]string{{"filename": "a.pdf", "content_type": "text/plain\r\nX: y", "content": "eA=="}}
		},
		"tenant id CRLF":      func(m map[string]any) { m["tenant_id"] = "acme\r\nX: y" },
		"metadata value CRLF": func(m map[string]any) { m["metadata"] = map[string]string{"k": "v\r\nX: y"} },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			in := invoice()
			edit(in)
			r := s.post(t, in)
			if r.status != http.StatusUnprocessableEntity || r.code(t) != "validation_failed" {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(s.account.Messages()); n != 0 || s.account.Connections() != 0 {
		t.Fatalf("%d messages and %d connections reached SMTP", n, s.account.Connections())
	}
}

// endless is a reader of n bytes of JSON-ish filler that allocates nothing.
type endless struct {
	prefix []byte
	n      int64
}

func (e *endless) Read(p []byte) (int, error) {
	if len(e.prefix) > 0 {
		k := copy(p, e.prefix)
		e.prefix = e.prefix[k:]
		return k, nil
	}
	if e.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), e.n)
	for i := range k {
		p[i] = 'x'
	}
	e.n -= k
	return int(k), nil
}

func TestMalformedAndOversizedBodies(t *testing.T) {
	h := newHarness(t, options{relay: dummyRelay()})
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	var many []map[string]string
	for i := range 10000 {
		many = append(many, map[string]string{"email": "r" + strconv.Itoa(i) + "@example.com"})
	}
	tenThousand := oneRecipient("acme")
	tenThousand["to"] = many
	badBase64 := oneRecipient("acme")
	badBase64["attachments"] = []map[string]string{{"filename": "a.pdf", "content": "not base64!!"}}
	cases := []struct {
		name   string
		body   any
		status int
	}{
		{"truncated", `{"tenant_id": "acme", "to": [{"email": "a@exa`, 400},
		{"not JSON", `<xml/>`, 400},
		{"array", `[]`, 422},
		{"wrong types", `{"tenant_id": 42, "to": "a@example.com"}`, 422},
		{"deep nesting", `{"tenant_id": "acme", "tags": ` + deep + `}`, 400},
		{"10,000 recipients", tenThousand, 422},
		{"bad base64", badBase64, 422},
		{"null", `null`, 422},
		{"empty", ``, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("POST", "/v1/messages", h.sendToken, tc.body)
			if r.status != tc.status {
				t.Fatalf("%d %s", r.status, r.body)
			}
			r.code(t) // problem+json with a code
		})
	}

	// 100 MB, declared and streamed (chunked, no length): refused while
	// reading, with memory far below the body's size.
	for _, declared := range []bool{true, false} {
		t.Run("100MB declared="+strconv.FormatBool(declared), func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			body := &endless{prefix: []byte(`{"tenant_id": "acme", "text": "`), n: 100 << 20}
			req, _ := http.NewRequest("POST", h.url+"/v1/messages", body)
			if declared {
				req.ContentLength = 100<<20 + int64(len(body.prefix))
			} else {
				req.ContentLength = -1
			}
			req.Header.Set("Authorization", "Bearer "+h.sendToken)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err) // the server may close early; Go's client reports the response it got
			}
			out, _ := io.ReadAll(res.Body)
			res.Body.Close()
			runtime.ReadMemStats(&after)
			if res.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(out, []byte(`"payload_too_large"`)) {
				t.Fatalf("%d %s", res.StatusCode, out)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 40<<20 {
				t.Errorf("allocated %d MB for a refused 100 MB body", grew>>20)
			}
		})
	}
}

// fieldCode is the code of the error for field in a 422, or "".
func fieldCode(t *testing.T, r response, field string) string {
	t.Helper()
	errs, _ := r.json(t)["errors"].([]any)
	for _, e := range errs {
		if m, _ := e.(map[string]any); m["field"] == field {
			c, _ := m["code"].(string)
			return c
		}
	}
	return ""
}

// TestAddressLiteralsAndTraceHeadersRefused: a recipient at an address
// literal would have the relay connect to that address itself, and trace
// or authentication headers would forge what servers on the way say.
func TestAddressLiteralsAndTraceHeadersRefused(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	cases := []struct {
		name, field, code string
		edit              func(m map[string]any)
	}{
		{"IPv4 literal", "to[0].email", "address_literal",
			func(m map[string]any) { m["to"] = []map[string]string{{"email": "x@[127.0.0.1]"}} }},
		{"IPv6 literal", "bcc[0].email", "address_literal",
			func(m map[string]any) { m["bcc"] = []map[string]string{{"email": "x@[IPv6:::1]"}} }},
		{"Received", "headers.Received", "reserved_header",
			func(m map[string]any) { m["headers"] = map[string]string{"Received": "from trusted"} }},
		{"Authentication-Results", "headers.Authentication-Results", "reserved_header",
			func(m map[string]any) { m["headers"] = map[string]string{"Authentication-Results": "x; dkim=pass"} }},
		{"ARC-Seal", "headers.ARC-Seal", "reserved_header",
			func(m map[string]any) { m["headers"] = map[string]string{"ARC-Seal": "i=1"} }},
		{"Resent-To", "headers.Resent-To", "reserved_header",
			func(m map[string]any) { m["headers"] = map[string]string{"Resent-To": "v@example.com"} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := invoice()
			tc.edit(in)
			r := s.post(t, in)
			if r.status != http.StatusUnprocessableEntity || r.code(t) != "validation_failed" {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if got := fieldCode(t, r, tc.field); got != tc.code {
				t.Errorf("%s: code %q, want %q: %s", tc.field, got, tc.code, r.body)
			}
		})
	}
	if n := len(s.account.Messages()); n != 0 {
		t.Fatalf("%d messages reached SMTP", n)
	}
}
