package systemtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/outbound-mail/outbound/client"
	"github.com/outbound-mail/outbound/internal/smtptest"
	"github.com/outbound-mail/outbound/internal/webhook"
)

// TestReadmeThroughClient runs the README's examples through the
// generated client against the whole service: the bodies are the
// README's own (parsed from its curl commands and its prose), decoded
// strictly into the client's request types, so an example that stops
// matching openapi.yaml fails here, and so does an answer that is not
// what the README says it is. Every response is checked against
// openapi.yaml as the other tests' are.
func TestReadmeThroughClient(t *testing.T) {
	rm := readReadme(t)
	hooks := newHookRecorder(t)
	s := newSendSetup(t, smtptest.Options{Users: map[string]string{"billing@acme.example": "any password"}},
		func(o *options) {
			o.roots.AddCert(hooks.srv.Certificate())
			o.resolver = loopbackResolver{"smtp.gmail.com": true} // the Gmail example's server: nothing listens there
			o.connectReturn = []string{"https://app.example/settings/"}
		})
	r := &readmeRunner{t: t, s: s, c: newSpecCheckedClient(t, s.harness, ""), vars: map[string]string{
		"$ADMIN_TOKEN": s.adminToken, "$SEND_TOKEN": s.sendToken,
		"$(base64 -w0 invoice-42.pdf)": base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 invoice 42")),
		"<admin token>":                s.adminToken, "<send token>": s.sendToken, "<catcher port>": itoa(s.account.Port()),
		"<directory id>": "contoso.onmicrosoft.com", "<client id>": "11111111-2222-3333-4444-555555555555",
		"<secret>": "client-secret", "<refresh token>": "refresh-token",
	}}
	ctx := context.Background()

	// Webhooks first: a webhook hears only of outcomes after it is saved.
	var in client.WebhookInput
	r.decode("the Webhooks section's PUT body", r.fill(rm.inline(t, "Webhooks", "`PUT /v1/webhooks/{name}` with `", "`")), &in)
	in.URL = strings.Replace(in.URL, "https://...", hooks.srv.URL, 1)
	in.TenantID = strings.Replace(in.TenantID, "optional filter", "acme", 1)
	hook, err := r.c.PutWebhookWithResponse(ctx, "ops", nil, in, r.bearer(s.adminToken))
	if err != nil || hook.JSON201 == nil || hook.JSON201.Secret == "" {
		t.Fatalf("PUT webhook: %v %s", err, body(hook))
	}

	t.Run("try it", func(t *testing.T) {
		r.t = t
		cmds := rm.block(t, "Try it", "/v1/tenants/acme/smtp")
		if res := r.run(cmds[0]).(*client.PutTenantSMTPResponse); res.JSON201 == nil || res.JSON201.SenderName != "Acme Trading" {
			t.Fatalf("PUT profile: %s", body(res))
		}
		sent := r.run(cmds[1]).(*client.SendMessageResponse)
		if sent.JSON202 == nil || sent.JSON202.Route != client.RouteTenant || sent.Headers202.Location != "/v1/messages/"+sent.JSON202.ID {
			t.Fatalf("POST message: %s", body(sent))
		}
		r.vars["<id>"] = sent.JSON202.ID
		if st := r.run(cmds[2]).(*client.GetMessageResponse); st.JSON200 == nil || st.JSON200.ID != sent.JSON202.ID {
			t.Fatalf("GET message: %s", body(st))
		}
		r.waitStatus(sent.JSON202.ID, client.StatusSent)
		m := r.received("Invoice 42")
		wantHeader(t, m, "From", `"Acme Trading" <billing@acme.example>`)
		wantHeader(t, m, "To", "<client@example.com>")
		if m.From != "billing@acme.example" || len(m.To) != 1 || m.To[0] != "client@example.com" {
			t.Errorf("envelope: from %s to %v", m.From, m.To)
		}
		hooks.wantEvent(t, rm, hook.JSON201.Secret, sent.JSON202.ID, client.WebhookEventTypeMessageSent)
	})

	t.Run("gmail settings page", func(t *testing.T) {
		r.t = t
		cmds := rm.block(t, "API", `"provider": "gmail"`)
		res := r.run(cmds[0]).(*client.PutTenantSMTPResponse)
		if p := res.JSON200; p == nil || p.Host != "smtp.gmail.com" || p.Port != 465 || p.Security != client.SMTPSecurityTLS ||
			!p.PasswordSet || p.Provider != "gmail" || res.Headers200.ETag == "" {
			t.Fatalf("PUT gmail profile: %s", body(res))
		}
		v := r.run(cmds[1]).(*client.VerifyTenantSMTPResponse)
		if v.JSON200 == nil || v.JSON200.Ok || v.JSON200.Error.Code != client.VerifyErrorCodeConnectFailed || v.JSON200.Error.Hint == "" {
			t.Fatalf("verify (nothing listens on smtp.gmail.com:465 here): %s", body(v))
		}
	})

	t.Run("an invoice", func(t *testing.T) {
		r.t = t
		r.run(rm.block(t, "Try it", "/v1/tenants/acme/smtp")[0]) // back to the catcher after the Gmail example
		cmds := rm.block(t, "API", "Idempotency-Key: invoice-42")
		sent := r.run(cmds[0]).(*client.SendMessageResponse)
		if sent.JSON202 == nil || sent.JSON202.Status != client.StatusQueued || sent.Headers202.RateLimitLimit == 0 {
			t.Fatalf("POST invoice: %s", body(sent))
		}
		r.vars["<id>"] = sent.JSON202.ID
		r.run(cmds[1])
		st := r.waitStatus(sent.JSON202.ID, client.StatusSent)
		if len(st.Attempts) != 1 || st.Attempts[0].SMTPCode != 250 {
			t.Errorf("attempts: %+v", st.Attempts)
		}
		m := r.received("فاتورة رقم 42")
		wantHeader(t, m, "To", `"Client" <client@example.com>`)
		if !bytes.Contains(m.Data, []byte(`filename="invoice-42.pdf"`)) {
			t.Errorf("the attachment is not in the message:\n%s", m.Data)
		}
		// The same request under the same key is a replay of the first.
		replay := cmds[0]
		replay.expect = http.StatusOK
		again := r.run(replay).(*client.SendMessageResponse)
		if again.JSON200 == nil || again.JSON200.ID != sent.JSON202.ID {
			t.Errorf("repeat under the same Idempotency-Key: %s", body(again))
		}
	})

	t.Run("a month-end batch", func(t *testing.T) {
		r.t = t
		res := r.run(rm.block(t, "API", "/v1/messages/batch")[0]).(*client.SendBatchResponse)
		if res.JSON200 == nil || len(res.JSON200.Results) != 2 {
			t.Fatalf("batch: %s", body(res))
		}
		ok, bad := res.JSON200.Results[0], res.JSON200.Results[1]
		if ok.Status != 202 || ok.Message.ID == "" {
			t.Errorf("first result: %+v", ok)
		}
		if bad.Status != 422 || bad.Problem.Code != client.ProblemCodeValidationFailed ||
			len(bad.Problem.Errors) == 0 || bad.Problem.Errors[0].Field != "to[0].email" {
			t.Errorf("second result: %+v", bad)
		}
	})

	t.Run("pausing", func(t *testing.T) {
		r.t = t
		var pause client.TenantStatusInput
		r.decode("the pausing example", rm.inline(t, "Scheduling, suppressions", "`PUT /v1/tenants/{tenant}/status ", "`"), &pause)
		st, err := r.c.PutTenantStatusWithResponse(ctx, "acme", nil, pause, r.bearer(s.adminToken))
		if err != nil || st.JSON200 == nil || st.JSON200.Sending != client.SendingStatePaused {
			t.Fatalf("pause: %v %s", err, body(st))
		}
		refused := r.run(rm.block(t, "Try it", "/v1/messages")[1]).(*client.SendMessageResponse)
		if p := refused.ApplicationProblemJSON423; p == nil || p.Code != client.ProblemCodeTenantPaused || p.RequestID != refused.Headers423.XRequestID {
			t.Fatalf("POST while paused: %d %s", refused.StatusCode(), body(refused))
		}
		resumed, err := r.c.PutTenantStatusWithResponse(ctx, "acme", nil, client.TenantStatusInput{Sending: client.SendingStateActive},
			r.bearer(s.adminToken))
		if err != nil || resumed.JSON200 == nil || resumed.JSON200.Sending != client.SendingStateActive {
			t.Fatalf("resume: %v %s", err, body(resumed))
		}
	})

	t.Run("suppressions", func(t *testing.T) {
		r.t = t
		cmds := rm.block(t, "Scheduling, suppressions", "/suppressions/client@example.com")
		added := r.run(cmds[0]).(*client.PutSuppressionResponse)
		if added.JSON200 == nil || added.JSON200.Source != client.SuppressionSourceManual || added.JSON200.Reason != "asked to stop" {
			t.Fatalf("PUT suppression: %s", body(added))
		}
		page := r.run(cmds[1]).(*client.ListSuppressionsResponse)
		if page.JSON200 == nil || len(page.JSON200.Suppressions) != 1 || page.JSON200.Suppressions[0].Email != "client@example.com" {
			t.Fatalf("GET suppressions: %s", body(page))
		}
		// While listed, the address is skipped: the try-it message, to it alone, ends suppressed.
		sent := r.run(rm.block(t, "Try it", "/v1/messages")[1]).(*client.SendMessageResponse)
		if sent.JSON202 == nil {
			t.Fatalf("POST: %s", body(sent))
		}
		st := r.waitStatus(sent.JSON202.ID, client.StatusSuppressed)
		if len(st.SuppressedRecipients) != 1 || st.SuppressedRecipients[0].Email != "client@example.com" {
			t.Errorf("suppressed_recipients: %+v", st.SuppressedRecipients)
		}
		r.run(cmds[2])
		if got, err := r.c.GetSuppressionWithResponse(ctx, "acme", "client@example.com", nil, r.bearer(s.adminToken)); err != nil ||
			got.ApplicationProblemJSON404 == nil || got.ApplicationProblemJSON404.Code != client.ProblemCodeNotFound {
			t.Errorf("GET after DELETE: %v %s", err, body(got))
		}
	})

	t.Run("listings and stats", func(t *testing.T) {
		r.t = t
		cmds := rm.block(t, "Listings and stats", "/v1/messages?")
		// The examples before sent acme's mail to client@example.com.
		toClient := r.run(cmds[0]).(*client.ListMessagesResponse)
		if toClient.JSON200 == nil || len(toClient.JSON200.Messages) < 3 {
			t.Fatalf("GET messages by tenant and recipient: %s", body(toClient))
		}
		for _, m := range toClient.JSON200.Messages {
			if m.TenantID != "acme" {
				t.Errorf("listed by tenant: %+v", m)
			}
		}
		if failed := r.run(cmds[1]).(*client.ListMessagesResponse); failed.JSON200 == nil {
			t.Fatalf("GET failed messages: %s", body(failed))
		}
		tenants := r.run(cmds[2]).(*client.ListTenantsResponse)
		if tenants.JSON200 == nil || len(tenants.JSON200.Tenants) == 0 || tenants.JSON200.Tenants[0].TenantID != "acme" ||
			tenants.JSON200.Tenants[0].Route != client.RouteTenant {
			t.Fatalf("GET tenants: %s", body(tenants))
		}
		stats := r.run(cmds[3]).(*client.GetStatsResponse)
		if st := stats.JSON200; st == nil || len(st.Minutes) != 60 || len(st.Hours) != 24 || len(st.Partitions) == 0 {
			t.Fatalf("GET stats: %s", body(stats))
		}
		var sent int64
		for _, b := range stats.JSON200.Hours {
			sent += b.Sent
		}
		if sent == 0 {
			t.Errorf("acme's stats count no message sent: %s", body(stats))
		}

		log, err := r.c.ListWebhookDeliveriesWithResponse(ctx, "ops", &client.ListWebhookDeliveriesParams{}, r.bearer(s.adminToken))
		if err != nil || log.JSON200 == nil || len(log.JSON200.Deliveries) == 0 {
			t.Fatalf("the ops webhook's log: %v %s", err, body(log))
		}
		r.vars["<event_id>"] = log.JSON200.Deliveries[0].EventID
		again := r.run(rm.block(t, "Listings and stats", "/retry")[0]).(*client.RetryWebhookDeliveryResponse)
		if again.JSON202 == nil || again.JSON202.EventID != log.JSON200.Deliveries[0].EventID {
			t.Fatalf("retry a delivery: %s", body(again))
		}
	})

	t.Run("oauth profiles", func(t *testing.T) {
		r.t = t
		m365 := r.run(rm.block(t, "Microsoft 365", "/v1/tenants/contoso/smtp")[0]).(*client.PutTenantSMTPResponse)
		if p := m365.JSON201; p == nil || p.Auth != client.SMTPAuthXoauth2 || p.Oauth.Flow != client.OAuthFlowClientCredentials ||
			!strings.Contains(p.Oauth.TokenURL, "contoso.onmicrosoft.com") || !p.Oauth.ClientSecretSet {
			t.Fatalf("PUT microsoft365 profile: %s", body(m365))
		}
		google := r.run(rm.block(t, "Microsoft 365", `"refresh_token": "<refresh token>"`)[0]).(*client.PutTenantSMTPResponse)
		if p := google.JSON200; p == nil || p.Oauth.Flow != client.OAuthFlowRefreshToken || !p.Oauth.RefreshTokenSet {
			t.Fatalf("PUT gmail oauth profile: %s", body(google))
		}
	})

	t.Run("connect page", func(t *testing.T) {
		r.t = t
		cmds := rm.block(t, "Connect page", "/v1/tenants/acme/connect")
		link := r.run(cmds[0]).(*client.CreateConnectLinkResponse)
		if l := link.JSON201; l == nil || !strings.HasPrefix(l.URL, s.url+"/connect/") || l.ExpiresAt.Before(time.Now().Add(59*time.Minute)) {
			t.Fatalf("POST connect: %s", body(link))
		}
		res, err := http.Get(link.JSON201.URL)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET the link: %v %v", err, res)
		}
		res.Body.Close()
		profile := r.run(rm.block(t, "Connect page", "/v1/tenants/acme/smtp")[0]).(*client.GetTenantSMTPResponse)
		if profile.JSON200 == nil || profile.JSON200.TenantID != "acme" {
			t.Fatalf("GET profile: %s", body(profile))
		}
	})

	t.Run("problems and request ids", func(t *testing.T) {
		r.t = t
		anonymous := newSpecCheckedClient(t, s.harness, "")
		res, err := anonymous.SendMessageWithResponse(ctx, &client.SendMessageParams{XRequestID: new("readme-1")},
			client.MessageRequest{TenantID: "acme"})
		if err != nil || res.ApplicationProblemJSON401 == nil || res.ApplicationProblemJSON401.Code != client.ProblemCodeUnauthorized ||
			res.Headers401.WWWAuthenticate == "" || res.Headers401.XRequestID != "readme-1" || res.ApplicationProblemJSON401.RequestID != "readme-1" {
			t.Fatalf("no token: %v %s", err, body(res))
		}
	})
	r.t = t
	if missing := rm.unrun(r.ran); len(missing) > 0 {
		t.Errorf("README curl examples this test does not run: %s", strings.Join(missing, "; "))
	}
}

// readmeCurl is one curl command from a README code block.
type readmeCurl struct {
	at      string // "README.md:<line>", for messages
	section string // the ## heading it is under
	method  string
	path    string
	query   url.Values
	headers http.Header
	body    string // as the shell would pass it, placeholders left in
	expect  int    // the status in the "# 202 ..." comment that follows it, if any
}

// readme is the README's text and the curl commands of its shell blocks.
type readme struct {
	text   string
	blocks []readmeBlock
}

type readmeBlock struct {
	section string // the ## heading it is under
	text    string
	cmds    []readmeCurl
}

func readReadme(t *testing.T) *readme {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rm := &readme{text: string(b)}
	lines := strings.Split(rm.text, "\n")
	section := ""
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "## ") {
			section = strings.TrimPrefix(l, "## ")
		}
		if strings.TrimSpace(l) != "```sh" {
			continue
		}
		indent := l[:strings.Index(l, "`")]
		start := i + 1
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			lines[i] = strings.TrimPrefix(lines[i], indent)
		}
		text := strings.Join(lines[start:i], "\n")
		if cmds := parseCurls(t, section, start, text); len(cmds) > 0 {
			rm.blocks = append(rm.blocks, readmeBlock{section: section, text: text, cmds: cmds})
		}
	}
	return rm
}

// block is the curl commands of the first block under the section whose
// heading starts with section and whose text holds has.
func (rm *readme) block(t *testing.T, section, has string) []readmeCurl {
	t.Helper()
	for _, b := range rm.blocks {
		if strings.HasPrefix(b.section, section) && strings.Contains(b.text, has) {
			return b.cmds
		}
	}
	t.Fatalf("README.md: no curl example under %q with %q", section, has)
	return nil
}

// inline is the text between before and after in the section's prose.
func (rm *readme) inline(t *testing.T, section, before, after string) string {
	t.Helper()
	i := strings.Index(rm.text, "\n## "+section)
	if i < 0 {
		t.Fatalf("README.md: no section %q", section)
	}
	rest := rm.text[i:]
	j := strings.Index(rest, before)
	if j < 0 {
		t.Fatalf("README.md, %s: no %q", section, before)
	}
	rest = rest[j+len(before):]
	k := strings.Index(rest, after)
	if k < 0 {
		t.Fatalf("README.md, %s: no %q after %q", section, after, before)
	}
	return rest[:k]
}

// unrun lists the curl commands not in ran.
func (rm *readme) unrun(ran map[string]bool) []string {
	var out []string
	for _, b := range rm.blocks {
		for _, c := range b.cmds {
			if !ran[c.at] {
				out = append(out, c.at+" "+c.method+" "+c.path)
			}
		}
	}
	return out
}

var statusComment = regexp.MustCompile(`^# ([1-5][0-9][0-9])\b`)

// parseCurls reads the curl commands of a shell block: quotes, line
// continuations and comments as sh reads them; $VARS and $(commands)
// are kept as written, for the runner to fill in.
func parseCurls(t *testing.T, section string, firstLine int, block string) []readmeCurl {
	t.Helper()
	var out []readmeCurl
	var words []string
	var word strings.Builder
	inWord, line, cmdLine := false, firstLine, firstLine
	end := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	endCommand := func() {
		end()
		if len(words) > 0 && words[0] == "curl" {
			out = append(out, curlOf(t, section, cmdLine+1, words[1:]))
		}
		words = nil
	}
	for i := 0; i < len(block); i++ {
		c := block[i]
		switch {
		case c == '\\' && i+1 < len(block) && block[i+1] == '\n':
			end()
			i++
			line++
		case c == '\n':
			endCommand()
			line++
			cmdLine = line
		case c == ' ' || c == '\t':
			end()
		case c == '#' && !inWord:
			j := strings.IndexByte(block[i:], '\n')
			if j < 0 {
				j = len(block) - i
			}
			if m := statusComment.FindStringSubmatch(block[i : i+j]); m != nil && len(out) > 0 && len(words) == 0 {
				out[len(out)-1].expect = atoi(t, m[1])
			}
			i += j - 1
		case c == '\'':
			j := strings.IndexByte(block[i+1:], '\'')
			if j < 0 {
				t.Fatalf("README.md:%d: unclosed '", line+1)
			}
			word.WriteString(block[i+1 : i+1+j])
			line += strings.Count(block[i+1:i+1+j], "\n")
			i += j + 1
			inWord = true
		case c == '"':
			j := strings.IndexByte(block[i+1:], '"')
			if j < 0 {
				t.Fatalf(`README.md:%d: unclosed "`, line+1)
			}
			word.WriteString(block[i+1 : i+1+j]) // $... inside stays, for the runner
			i += j + 1
			inWord = true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	endCommand()
	return out
}

func curlOf(t *testing.T, section string, line int, args []string) readmeCurl {
	t.Helper()
	c := readmeCurl{at: "README.md:" + itoa(line), section: section, headers: http.Header{}}
	var rawURL string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-X" && i+1 < len(args):
			c.method = args[i+1]
			i++
		case a == "-H" && i+1 < len(args):
			k, v, ok := strings.Cut(args[i+1], ":")
			if !ok {
				t.Fatalf("%s: header %q", c.at, args[i+1])
			}
			c.headers.Add(k, strings.TrimSpace(v))
			i++
		case a == "-d" && i+1 < len(args):
			c.body = args[i+1]
			i++
		case strings.HasPrefix(a, "-"):
			t.Fatalf("%s: curl option %s is not understood here", c.at, a)
		default:
			rawURL = a
		}
	}
	if c.method == "" {
		c.method = http.MethodGet
		if c.body != "" {
			c.method = http.MethodPost
		}
	}
	if !strings.Contains(rawURL, "://") {
		rawURL = "http://" + rawURL
	}
	// Placeholders such as <id> are not URL syntax: parse around them.
	u, err := url.Parse(strings.NewReplacer("<", "%3C", ">", "%3E").Replace(rawURL))
	if err != nil {
		t.Fatalf("%s: URL %q: %v", c.at, rawURL, err)
	}
	c.path, c.query = u.Path, u.Query()
	return c
}

// readmeRunner sends README commands through the generated client.
type readmeRunner struct {
	t    *testing.T
	s    sendSetup
	c    *client.ClientWithResponses
	vars map[string]string // $VARS, $(commands) and <placeholders> → values
	ran  map[string]bool
}

var placeholder = regexp.MustCompile(`<[^<>"]+>|\$\([^)]*\)|\$[A-Z_]+|01K\.\.\.-0`)

// fill replaces the README's variables and placeholders; one it does not
// know fails the test, so a new one is noticed.
func (r *readmeRunner) fill(s string) string {
	r.t.Helper()
	return placeholder.ReplaceAllStringFunc(s, func(p string) string {
		if p == "01K...-0" {
			p = "<id>"
		}
		v, ok := r.vars[p]
		if !ok {
			r.t.Fatalf("README placeholder %s has no value in contract_test.go", p)
		}
		return v
	})
}

// decode reads a README body strictly into a client request type: a
// field the spec does not have fails.
func (r *readmeRunner) decode(what, body string, v any) {
	r.t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		r.t.Fatalf("%s does not decode into %T: %v\n%s", what, v, err, body)
	}
}

func (r *readmeRunner) bearer(token string) client.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

var (
	tenantSMTP      = regexp.MustCompile(`^/v1/tenants/([^/]+)/smtp$`)
	verifySMTP      = regexp.MustCompile(`^/v1/tenants/([^/]+)/smtp/verify$`)
	connectPath     = regexp.MustCompile(`^/v1/tenants/([^/]+)/connect$`)
	suppressionPath = regexp.MustCompile(`^/v1/tenants/([^/]+)/suppressions/([^/]+)$`)
	suppressAll     = regexp.MustCompile(`^/v1/tenants/([^/]+)/suppressions$`)
	oneMessage      = regexp.MustCompile(`^/v1/messages/([^/]+)$`)
	retryDelivery   = regexp.MustCompile(`^/v1/webhooks/([^/]+)/deliveries/([^/]+)/retry$`)
)

// run sends one README command and checks the status its comment names.
func (r *readmeRunner) run(cmd readmeCurl) interface{ StatusCode() int } {
	r.t.Helper()
	if r.ran == nil {
		r.ran = map[string]bool{}
	}
	r.ran[cmd.at] = true
	ctx := context.Background()
	path, body := r.fill(cmd.path), r.fill(cmd.body)
	var auth []client.RequestEditorFn
	for name, values := range cmd.headers {
		switch v := r.fill(values[0]); name {
		case "Authorization":
			auth = append(auth, func(_ context.Context, req *http.Request) error { req.Header.Set(name, v); return nil })
		case "Content-Type", "Idempotency-Key":
			// the client sets the one, the params carry the other
		default:
			r.t.Fatalf("%s: header %s has no place in contract_test.go", cmd.at, name)
		}
	}
	what := cmd.at + " " + cmd.method + " " + cmd.path
	var res interface{ StatusCode() int }
	var err error
	switch m := cmd.method; {
	case m == http.MethodPut && tenantSMTP.MatchString(path):
		var in client.ProfileInput
		r.decode(what, body, &in)
		res, err = r.c.PutTenantSMTPWithResponse(ctx, tenantSMTP.FindStringSubmatch(path)[1], nil, in, auth...)
	case m == http.MethodPost && verifySMTP.MatchString(path) && body == "":
		res, err = r.c.VerifyTenantSMTPWithBodyWithResponse(ctx, verifySMTP.FindStringSubmatch(path)[1], nil, "", nil, auth...)
	case m == http.MethodPost && path == "/v1/messages":
		var in client.MessageRequest
		r.decode(what, body, &in)
		res, err = r.c.SendMessageWithResponse(ctx, &client.SendMessageParams{IdempotencyKey: header(cmd, "Idempotency-Key")}, in, auth...)
	case m == http.MethodPost && path == "/v1/messages/batch":
		var in client.BatchRequest
		r.decode(what, body, &in)
		res, err = r.c.SendBatchWithResponse(ctx, &client.SendBatchParams{IdempotencyKey: header(cmd, "Idempotency-Key")}, in, auth...)
	case m == http.MethodPost && connectPath.MatchString(path):
		var in client.ConnectLinkRequest
		r.decode(what, body, &in)
		res, err = r.c.CreateConnectLinkWithResponse(ctx, connectPath.FindStringSubmatch(path)[1], nil, in, auth...)
	case m == http.MethodGet && tenantSMTP.MatchString(path):
		res, err = r.c.GetTenantSMTPWithResponse(ctx, tenantSMTP.FindStringSubmatch(path)[1], nil, auth...)
	case m == http.MethodGet && oneMessage.MatchString(path):
		res, err = r.c.GetMessageWithResponse(ctx, oneMessage.FindStringSubmatch(path)[1], nil, auth...)
	case m == http.MethodPut && suppressionPath.MatchString(path):
		var in client.SuppressionInput
		r.decode(what, body, &in)
		p := suppressionPath.FindStringSubmatch(path)
		res, err = r.c.PutSuppressionWithResponse(ctx, p[1], p[2], nil, in, auth...)
	case m == http.MethodDelete && suppressionPath.MatchString(path):
		p := suppressionPath.FindStringSubmatch(path)
		res, err = r.c.DeleteSuppressionWithResponse(ctx, p[1], p[2], nil, auth...)
	case m == http.MethodGet && suppressAll.MatchString(path):
		params := &client.ListSuppressionsParams{}
		if l := cmd.query.Get("limit"); l != "" {
			params.Limit = new(atoi(r.t, l))
		}
		res, err = r.c.ListSuppressionsWithResponse(ctx, suppressAll.FindStringSubmatch(path)[1], params, auth...)
	case m == http.MethodGet && path == "/v1/messages":
		res, err = r.c.ListMessagesWithResponse(ctx, r.listParams(cmd.query), auth...)
	case m == http.MethodPost && retryDelivery.MatchString(path):
		p := retryDelivery.FindStringSubmatch(path)
		res, err = r.c.RetryWebhookDeliveryWithResponse(ctx, p[1], p[2], nil, auth...)
	case m == http.MethodGet && path == "/v1/tenants":
		params := &client.ListTenantsParams{}
		if l := cmd.query.Get("limit"); l != "" {
			params.Limit = new(atoi(r.t, l))
		}
		res, err = r.c.ListTenantsWithResponse(ctx, params, auth...)
	case m == http.MethodGet && path == "/v1/stats":
		params := &client.GetStatsParams{}
		if v := cmd.query.Get("tenant_id"); v != "" {
			params.TenantID = &v
		}
		res, err = r.c.GetStatsWithResponse(ctx, params, auth...)
	default:
		r.t.Fatalf("%s: no client call for it in contract_test.go", what)
	}
	if err != nil {
		r.t.Fatalf("%s: %v", what, err)
	}
	if cmd.expect != 0 && res.StatusCode() != cmd.expect {
		r.t.Fatalf("%s answered %d; the README says %d", what, res.StatusCode(), cmd.expect)
	}
	return res
}

// listParams are a README listing's query as the client's parameters.
func (r *readmeRunner) listParams(q url.Values) *client.ListMessagesParams {
	r.t.Helper()
	params := &client.ListMessagesParams{}
	for name, values := range q {
		v := values[0]
		switch name {
		case "tenant_id":
			params.TenantID = &v
		case "tag":
			params.Tag = &v
		case "to":
			params.To = &v
		case "status":
			params.Status = new(client.Status(v))
		case "limit":
			params.Limit = new(atoi(r.t, v))
		case "since", "until":
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				r.t.Fatalf("README listing: %s=%s: %v", name, v, err)
			}
			if name == "since" {
				params.Since = &at
			} else {
				params.Until = &at
			}
		default:
			r.t.Fatalf("README listing: parameter %s has no place in contract_test.go", name)
		}
	}
	return params
}

func header(cmd readmeCurl, name string) *string {
	if v := cmd.headers.Get(name); v != "" {
		return &v
	}
	return nil
}

// waitStatus polls the message through the client until it has status want.
func (r *readmeRunner) waitStatus(id string, want client.Status) client.MessageStatus {
	r.t.Helper()
	var last *client.GetMessageResponse
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		last, err = r.c.GetMessageWithResponse(context.Background(), id, nil, r.bearer(r.s.sendToken))
		if err != nil {
			r.t.Fatal(err)
		}
		if last.JSON200 != nil && last.JSON200.Status == want {
			return *last.JSON200
		}
	}
	r.t.Fatalf("message %s never reached %s: %s", id, want, body(last))
	return client.MessageStatus{}
}

// received is the message the SMTP server got with this (decoded) subject.
func (r *readmeRunner) received(subject string) smtptest.Message {
	r.t.Helper()
	for _, m := range r.s.account.Messages() {
		if mr, err := mail.CreateReader(bytes.NewReader(m.Data)); err == nil {
			if got, _ := mr.Header.Subject(); got == subject {
				return m
			}
		}
	}
	r.t.Fatalf("the SMTP server has no message with subject %q", subject)
	return smtptest.Message{}
}

func wantHeader(t *testing.T, m smtptest.Message, name, want string) {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	var got string
	switch name {
	case "Subject":
		got, err = mr.Header.Subject()
	default:
		var list []*mail.Address
		list, err = mr.Header.AddressList(name)
		for _, a := range list {
			got += a.String()
		}
	}
	if err != nil || got != want {
		t.Errorf("%s: %q (%v), want %q", name, got, err, want)
	}
}

// body shows a client answer (a generated *...Response) in a failure message.
func body(res interface{ StatusCode() int }) string {
	v := reflect.ValueOf(res)
	if !v.IsValid() || v.IsNil() {
		return "(no answer)"
	}
	return strconv.Itoa(res.StatusCode()) + " " + string(v.Elem().FieldByName("Body").Bytes())
}

// newSpecCheckedClient is a generated client whose every answer is checked
// against openapi.yaml (and kept for the harness's secrecy checks).
func newSpecCheckedClient(t *testing.T, h *harness, token string) *client.ClientWithResponses {
	t.Helper()
	var opts []client.ClientOption
	opts = append(opts, client.WithHTTPClient(specCheckedDoer{h: h}))
	if token != "" {
		opts = append(opts, client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+token)
			return nil
		}))
	}
	c, err := client.NewClientWithResponses(h.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type specCheckedDoer struct{ h *harness }

func (d specCheckedDoer) Do(req *http.Request) (*http.Response, error) {
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(b))
	d.h.mu.Lock()
	d.h.answers = append(d.h.answers, b)
	d.h.mu.Unlock()
	checkAgainstSpec(d.h.t, req, response{status: res.StatusCode, header: res.Header, body: b})
	return res, nil
}

// hookRecorder is a webhook receiver that keeps what it is sent.
type hookRecorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []recordedPost
	seen chan struct{}
}

type recordedPost struct {
	header http.Header
	body   []byte
}

func newHookRecorder(t *testing.T) *hookRecorder {
	h := &hookRecorder{seen: make(chan struct{}, 100)}
	h.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		h.mu.Lock()
		h.got = append(h.got, recordedPost{header: req.Header.Clone(), body: b})
		h.mu.Unlock()
		h.seen <- struct{}{}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// wantEvent waits for the event of type typ about message id and checks
// it as a receiver would and against openapi.yaml: signature, the
// WebhookEvent schema, a strict decode into client.WebhookEvent, and the
// README's example naming only fields the event has.
func (h *hookRecorder) wantEvent(t *testing.T, rm *readme, secret, id string, typ client.WebhookEventType) {
	t.Helper()
	loadSpec(t)
	schema := spec.doc.Components.Schemas["WebhookEvent"]
	if schema == nil {
		t.Fatal("openapi.yaml has no WebhookEvent schema")
	}
	var example map[string]any
	if err := json.Unmarshal([]byte(rm.inline(t, "Webhooks", "```json\n", "```")), &example); err != nil {
		t.Fatalf("the README's event example is not JSON: %v", err)
	}
	timeout := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		posts := append([]recordedPost(nil), h.got...)
		h.mu.Unlock()
		for _, p := range posts {
			var ev client.WebhookEvent
			dec := json.NewDecoder(bytes.NewReader(p.body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ev); err != nil {
				t.Fatalf("event does not decode into client.WebhookEvent: %v\n%s", err, p.body)
			}
			if ev.Data.MessageID != id || ev.Type != typ {
				continue
			}
			if err := webhook.Verify(p.header.Get("Outbound-Signature"), secret, p.body, time.Now(), 5*time.Minute); err != nil {
				t.Errorf("signature: %v", err)
			}
			if ua := p.header.Get("User-Agent"); ua != "Outbound-Webhooks/1" {
				t.Errorf("User-Agent %q", ua)
			}
			var v any
			_ = json.Unmarshal(p.body, &v)
			if err := schema.Value.VisitJSON(v); err != nil {
				t.Errorf("event does not match openapi.yaml's WebhookEvent: %v\n%s", err, p.body)
			}
			if ev.Data.Status != client.StatusSent || ev.Data.TenantID != "acme" || len(ev.Data.Recipients) != 1 {
				t.Errorf("event data: %+v", ev.Data)
			}
			fieldsInSchema(t, "the README's event example", example, schema)
			return
		}
		select {
		case <-h.seen:
		case <-timeout:
			t.Fatalf("no %s event for %s; received %d posts", typ, id, len(posts))
		}
	}
}

// fieldsInSchema fails for a field of the README's example that the
// schema does not have.
func fieldsInSchema(t *testing.T, at string, example any, schema *openapi3.SchemaRef) {
	t.Helper()
	switch e := example.(type) {
	case map[string]any:
		if schema.Value.AdditionalProperties.Schema != nil {
			return // a map: any key
		}
		for k, v := range e {
			prop := schema.Value.Properties[k]
			if prop == nil {
				t.Errorf("%s: %s is not in openapi.yaml", at, k)
				continue
			}
			fieldsInSchema(t, at+"."+k, v, prop)
		}
	case []any:
		for _, v := range e {
			if schema.Value.Items != nil {
				fieldsInSchema(t, at+"[]", v, schema.Value.Items)
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
