package systemtest

import (
	"encoding/json"
	"testing"

	"github.com/outbound-mail/outbound/internal/pyrun"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// pySubmitScript is an SMTP submission client written with Python's
// smtplib, a client nobody here wrote: it reads one job (JSON) on stdin,
// opens one connection, logs in and sends each message, and prints every
// reply as JSON. It uses mail/rcpt/data rather than sendmail because
// sendmail throws away the reply to the final dot, which carries the id.
const pySubmitScript = `
import base64, json, smtplib, ssl, sys

job = json.load(sys.stdin)
ctx = ssl.create_default_context(cafile=job["cafile"])
out = {"auth_offered": None, "login": None, "sent": []}

def reply(code, text):
    return [code, text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)]

if job["tls"] == "implicit":
    s = smtplib.SMTP_SSL(job["host"], job["port"], context=ctx, timeout=20)
else:
    s = smtplib.SMTP(job["host"], job["port"], timeout=20)
s.ehlo("client.test")
if job["tls"] == "starttls":
    s.starttls(context=ctx)
    s.ehlo("client.test")
out["auth_offered"] = s.has_extn("auth")
if job["tls"] == "none":
    # smtplib will not log in where AUTH is not offered: say it anyway.
    cred = base64.b64encode(("\0%s\0%s" % (job["user"], job["password"])).encode()).decode()
    out["login"] = reply(*s.docmd("AUTH", "PLAIN " + cred))
    print(json.dumps(out))
    sys.exit(0)
try:
    if job.get("no_login"):
        raise StopIteration  # straight to MAIL, as a client that forgot to log in
    out["login"] = reply(*s.login(job["user"], job["password"]))
except smtplib.SMTPAuthenticationError as e:
    out["login"] = reply(e.smtp_code, e.smtp_error)
    print(json.dumps(out))
    sys.exit(0)
except StopIteration:
    pass
for m in job["messages"]:
    code, text = s.mail(m["from"], m.get("options") or [])
    if code != 250:
        out["sent"].append(reply(code, text))
        s.rset()
        continue
    bad = None
    for r in m["rcpts"]:
        code, text = s.rcpt(r)
        if code not in (250, 251) and bad is None:
            bad = reply(code, text)
    if bad is not None:
        out["sent"].append(bad)
        s.rset()
        continue
    try:
        out["sent"].append(reply(*s.data(base64.b64decode(m["data"]))))
    except smtplib.SMTPDataError as e:
        out["sent"].append(reply(e.smtp_code, e.smtp_error))
if job.get("cut"):
    s.sock.close()  # gone before QUIT, as a client whose connection broke
else:
    s.quit()
print(json.dumps(out))
`

// pyMessage is one message of a pyJob.
type pyMessage struct {
	From    string   `json:"from"`
	Rcpts   []string `json:"rcpts"`
	Data    []byte   `json:"data"` // base64 in JSON, as the script decodes it
	Options []string `json:"options,omitempty"`
}

// pyJob is one connection of the Python client.
type pyJob struct {
	Host     string      `json:"host"`
	Port     int         `json:"port"`
	TLS      string      `json:"tls"` // "starttls", "implicit" or "none" (AUTH in clear, then stop)
	CAFile   string      `json:"cafile"`
	User     string      `json:"user"`
	Password string      `json:"password"`
	Messages []pyMessage `json:"messages"`
	Cut      bool        `json:"cut"`      // close the socket without QUIT
	NoLogin  bool        `json:"no_login"` // after TLS, send MAIL without AUTH
}

// pyReply is a reply code and its text (enhanced code included).
type pyReply struct {
	Code int
	Text string
}

func (r *pyReply) UnmarshalJSON(b []byte) error {
	var pair [2]any
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	code, _ := pair[0].(float64)
	r.Code = int(code)
	r.Text, _ = pair[1].(string)
	return nil
}

// pyResult is what the Python client saw.
type pyResult struct {
	AuthOffered bool `json:"auth_offered"`
	Login       pyReply
	Sent        []pyReply
}

func pythonSubmit(t *testing.T, job pyJob) pyResult {
	t.Helper()
	in, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	var res pyResult
	pyrun.JSON(t, "python3 smtplib client", pySubmitScript, in, &res)
	return res
}

// pyReaderScript reads each message named on the command line with
// Python's email package (policy.default) and prints what it found.
const pyReaderScript = `
import base64, json, sys
from email import message_from_bytes, policy
out = []
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        m = message_from_bytes(f.read(), policy=policy.default)
    out.append({"from": str(m["from"]), "to": str(m["to"]), "subject": str(m["subject"]),
                "message_id": str(m["message-id"]).strip(), "has_bcc": "bcc" in m, "has_date": "date" in m,
                "body": base64.b64encode(m.get_payload(decode=True) or b"").decode()})
print(json.dumps(out))
`

// pyRead is one message as Python's email package reads it; Body is the
// payload as bytes (8bit: exactly the octets after the header).
type pyRead struct {
	From, To, Subject string
	MessageID         string `json:"message_id"`
	HasBcc            bool   `json:"has_bcc"`
	HasDate           bool   `json:"has_date"`
	Body              []byte
}

// pythonRead reads what an SMTP server received with Python's email.
func pythonRead(t *testing.T, msgs []smtptest.Message) []pyRead {
	t.Helper()
	raws := make([][]byte, len(msgs))
	for i, m := range msgs {
		raws[i] = m.Data
	}
	var reads []pyRead
	pyrun.JSON(t, "python3 email reader", pyReaderScript, nil, &reads, pyrun.Files(t, raws...)...)
	return reads
}
