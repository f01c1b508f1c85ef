package connect

import (
	"net/http"
	"strings"

	"github.com/outbound-mail/outbound/internal/lang"
	"github.com/outbound-mail/outbound/internal/provider"
	"github.com/outbound-mail/outbound/internal/transport"
	"github.com/outbound-mail/outbound/internal/validation"
)

// view is what the template renders. Kind is "choose" (provider and
// address), "form" (the account's fields), "gone" (a link that works no
// more), "refused" (a CSRF failure) or "message".
type view struct {
	loc    lang.Words
	Kind   string
	Action string
	CSRF   string

	Email     string
	Providers []choice
	Missing   bool // Next without a provider or an address

	Provider string
	Label    string
	Steps    []string
	Fields   []field
	Enabled  bool
	Errors   []summaryItem
	Result   *resultView
	Left     int // attempts left on the link

	Title, Body, Back string // gone and message pages
	Reload            string // the page to open again after a CSRF refusal
	Retry             string // the link's page, after a refused sign-in

	SignIn *signInView // the form step's "Sign in with ...", when an app is configured
}

// signInView is the sign-in button of the form step.
type signInView struct {
	Provider, Email, Button, Help, Or string
}

// T is the message for key in the page's language.
func (v view) T(key string, args ...any) string { return v.loc.Text(key, args...) }

// Lang and Dir are the html element's attributes.
func (v view) Lang() string { return v.loc.Tag }
func (v view) Dir() string  { return v.loc.Dir }

type choice struct {
	Value, Label string
	Checked      bool
}

// field is one labelled input; Described lists the ids of the texts tied
// to it (help, its error, the test's advice) for aria-describedby.
type field struct {
	ID, Label, Type, Value, Help, Error, Autocomplete, Inputmode, Dir string
	Described                                                         string
}

type summaryItem struct{ ID, Text string }

// resultView is a test's outcome: Advice in the page's language, Hint
// (the provider table's advice) and Detail (the server's reply) in English.
type resultView struct {
	OK                   bool
	Text                 string
	Advice, Hint, Detail string
}

// outcome is what a test came to: a login or an error. signedIn marks the
// test of a sign-in's grant, whose advice is about the grant rather than
// a password.
type outcome struct {
	ok       transport.Verified
	err      *transport.Error
	signedIn bool
}

func gone(loc lang.Words, reason, back string) view {
	return view{loc: loc, Kind: "gone", Title: loc.Text("gone." + reason + ".title"), Body: loc.Text("gone." + reason + ".body"), Back: back}
}

func (s *session) base(kind string) view {
	return view{loc: s.loc, Kind: kind, Action: s.action, CSRF: s.link.CSRF, Left: max(0, MaxAttempts-s.link.Attempts)}
}

// choose is the first step: the address and the provider.
func (s *session) choose(email, chosen string, missing bool) {
	v := s.base("choose")
	v.Email, v.Missing = email, missing
	if missing {
		v.Errors = []summaryItem{{ID: "provider-" + provider.All()[0].Name, Text: s.loc.Text("choose.missing")}}
	}
	for _, pr := range provider.All() {
		v.Providers = append(v.Providers, choice{Value: pr.Name, Label: pr.Label, Checked: pr.Name == chosen})
	}
	v.Providers = append(v.Providers, choice{Value: other, Label: s.loc.Text("provider.other"), Checked: chosen == other})
	status := http.StatusOK
	if missing {
		status = http.StatusUnprocessableEntity
	}
	s.render(s.w, v, status)
}

// blame is the field a failed test points at.
func blame(code string) string {
	switch code {
	case transport.CodeAuthFailed:
		return "password"
	case transport.CodeDNSFailed, transport.CodeEgressDenied:
		return "host"
	case transport.CodeConnectFailed, transport.CodeTimeout, transport.CodeTLSFailed:
		return "port"
	}
	return ""
}

// form is the second step: the account's fields, with the errors of the
// last submission and the outcome of the last test.
func (s *session) form(vals values, errs []validation.Field, out *outcome, status int) {
	v := s.base("form")
	v.Provider, v.Enabled = vals.Provider, vals.Enabled
	v.Label = s.loc.Text("provider.other")
	if pr, ok := provider.ByName(vals.Provider); ok {
		v.Label = pr.Label
	}
	v.Steps = s.loc.Lines("steps." + vals.Provider)
	if v.Steps == nil {
		v.Steps = s.loc.Lines("steps.default")
	}

	blamed := ""
	if out != nil && out.err != nil {
		te := out.err
		advice := "verify." + te.Code
		if _, ok := english["verify.signin."+te.Code]; ok && out.signedIn {
			advice = "verify.signin." + te.Code
		} else if _, ok := english[advice]; !ok {
			advice = "verify.other"
		}
		v.Result = &resultView{Text: s.loc.Text("verify.failed"), Advice: s.loc.Text(advice), Hint: te.Hint, Detail: te.Message}
		if !out.signedIn { // a grant's refusal is not the password field's
			blamed = blame(te.Code)
		}
	} else if out != nil {
		v.Result = &resultView{OK: true, Text: s.loc.Text("verify.ok", out.ok.Mechanism, out.ok.TLSVersion)}
	}

	inputs := []field{
		{ID: "sender_name", Type: "text", Value: vals.SenderName, Autocomplete: "organization"},
		{ID: "email", Type: "email", Value: vals.Email, Autocomplete: "email", Dir: "ltr"},
		{ID: "password", Type: "password", Autocomplete: "new-password", Dir: "ltr"},
		{ID: "username", Type: "text", Value: vals.Username, Autocomplete: "username", Dir: "ltr"},
		{ID: "host", Type: "text", Value: vals.Host, Autocomplete: "off", Dir: "ltr"},
		{ID: "port", Type: "text", Value: vals.Port, Autocomplete: "off", Inputmode: "numeric", Dir: "ltr"},
	}
	for i := range inputs {
		f := &inputs[i]
		f.Label = s.loc.Text("field." + f.ID)
		var ids []string
		if help := "field." + f.ID + ".help"; english[help] != "" {
			f.Help = s.loc.Text(help)
			ids = append(ids, f.ID+"-help")
		}
		for _, e := range errs {
			if e.Field == f.ID && f.Error == "" {
				f.Error = s.fieldError(f.Label, e)
				v.Errors = append(v.Errors, summaryItem{ID: f.ID, Text: f.Error})
				ids = append(ids, f.ID+"-error")
			}
		}
		if blamed == f.ID {
			ids = append(ids, "test-advice")
			if v.Result.Hint != "" {
				ids = append(ids, "test-hint")
			}
		}
		f.Described = strings.Join(ids, " ")
	}
	// A field the form does not show (security, auth) still gets its say.
	for _, e := range errs {
		if !shown(inputs, e.Field) {
			v.Errors = append(v.Errors, summaryItem{ID: "host", Text: s.fieldError(e.Field, e)})
		}
	}
	v.Fields = inputs
	if _, o, ok := s.appFor(vals.Provider); ok {
		v.SignIn = &signInView{Provider: vals.Provider, Email: vals.Email, Button: s.loc.Text("signin.button", o.Label),
			Help: s.loc.Text("signin.help", o.Label), Or: s.loc.Text("signin.or")}
	}
	s.render(s.w, v, status)
}

func shown(fields []field, id string) bool {
	for _, f := range fields {
		if f.ID == id {
			return true
		}
	}
	return false
}

func (s *session) fieldError(label string, e validation.Field) string {
	key := "error." + e.Code
	if _, ok := english[key]; !ok {
		key = "error.invalid"
	}
	return s.loc.Text(key, label)
}

// Invalid says whether the field is at fault, for aria-invalid.
func (f field) Invalid() bool { return f.Error != "" || strings.Contains(f.Described, "test-advice") }
