package main

import (
	"testing"

	"github.com/outbound-mail/outbound/internal/pyrun"
)

// pyReaderScript parses each file named on its command line with Python's
// email package, under both policy.default and compat32, and prints what
// a stranger's reader makes of it as JSON: one object per file.
const pyReaderScript = `
import base64, json, sys
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import getaddresses

def b64(b):
    return base64.b64encode(b or b"").decode()

def modern(raw):
    m = message_from_bytes(raw, policy=policy.default)
    def addrs(name):
        h = m[name]
        return [] if h is None else [{"name": a.display_name, "email": a.addr_spec} for a in h.addresses]
    text = m.get_body(("plain",))
    return {
        "subject": str(m["subject"]), "message_id": str(m["message-id"]).strip(),
        "test_case": str(m["x-test-case"]), "has_bcc": "bcc" in m,
        "return_path": str(m["return-path"]),
        "date": m["date"].datetime.isoformat() if m["date"] is not None else None,
        "from": addrs("from"), "to": addrs("to"), "cc": addrs("cc"), "reply_to": addrs("reply-to"),
        "text": text.get_content() if text is not None else None,
        "attachments": [{"filename": p.get_filename(), "content_type": p.get_content_type(),
                         "content": b64(p.get_payload(decode=True))} for p in m.iter_attachments()],
    }

def compat(raw):
    m = message_from_bytes(raw)  # compat32, the default policy
    def dec(v):
        return str(make_header(decode_header(v)))
    def addrs(name):
        return [{"name": dec(n), "email": a} for n, a in getaddresses(m.get_all(name, []))]
    return {
        "subject": dec(m["subject"]), "message_id": m["message-id"].strip(),
        "test_case": m["x-test-case"], "has_bcc": "bcc" in m,
        "from": addrs("from"), "to": addrs("to"), "cc": addrs("cc"), "reply_to": addrs("reply-to"),
        "attachments": [{"filename": p.get_filename(), "content_type": p.get_content_type(),
                         "content": b64(p.get_payload(decode=True))}
                        for p in m.walk() if p.get_content_disposition() == "attachment"],
    }

out = []
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        raw = f.read()
    out.append({"path": path, "modern": modern(raw), "compat32": compat(raw)})
json.dump(out, sys.stdout)
`

// pyAddr is an address as Python's email package reads it.
type pyAddr struct{ Name, Email string }

// pyAttachment is an attachment as Python reads it; Content is the
// decoded bytes.
type pyAttachment struct {
	Filename    string
	ContentType string `json:"content_type"`
	Content     []byte
}

// pyView is one policy's reading of a message.
type pyView struct {
	Subject   string
	MessageID string `json:"message_id"`
	TestCase  string `json:"test_case"`
	HasBcc    bool   `json:"has_bcc"`
	From, To  []pyAddr
	Cc        []pyAddr
	ReplyTo   []pyAddr `json:"reply_to"`
	// ReturnPath (the envelope sender, as Postfix records it) and Date
	// (ISO 8601, or "" when absent) are read under policy.default only.
	ReturnPath  string `json:"return_path"`
	Date        *string
	Text        *string
	Attachments []pyAttachment
}

// pyReading is what both policies make of one file.
type pyReading struct {
	Path     string
	Modern   pyView
	Compat32 pyView
}

// pythonRead parses the files with python3's email package.
func pythonRead(t *testing.T, paths []string) []pyReading {
	t.Helper()
	var readings []pyReading
	pyrun.JSON(t, "python3 email reader", pyReaderScript, nil, &readings, paths...)
	return readings
}
