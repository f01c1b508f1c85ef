package provider

import (
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

var namePattern = regexp.MustCompile(`^[a-z0-9]+$`)

// Every entry is complete and agrees with itself and with the others.
func TestTableEntries(t *testing.T) {
	seen := map[string]bool{}
	aliasOwner := map[string]string{}
	for _, p := range All() {
		t.Run(p.Name, func(t *testing.T) {
			if !namePattern.MatchString(p.Name) || seen[p.Name] {
				t.Errorf("name %q: not lower-case letters and digits, or used twice", p.Name)
			}
			seen[p.Name] = true
			if got, ok := ByName(p.Name); !ok || got.Name != p.Name {
				t.Errorf("ByName(%q) = %q, %v", p.Name, got.Name, ok)
			}
			if p.Label == "" {
				t.Error("no label")
			}
			switch {
			case p.Security == TLS && p.Port != 465, p.Security == StartTLS && p.Port != 587,
				p.Security != TLS && p.Security != StartTLS:
				t.Errorf("port %d with security %q: want 465 with tls or 587 with starttls", p.Port, p.Security)
			}
			for _, h := range append([]string{p.Host}, p.Aliases...) {
				if h == "" || h != strings.ToLower(h) || !strings.Contains(h, ".") {
					t.Errorf("host %q: not a lower-case host name", h)
				}
			}
			if got, ok := ForHost(p.Host); !ok || got.Host != p.Host {
				t.Errorf("ForHost(%q) = %q, %v", p.Host, got.Name, ok)
			} else if got.Name != p.Name && !sameServers(got, p) {
				t.Errorf("%s shares host %s with %s but not its hints, marks or OAuth", p.Name, p.Host, got.Name)
			}
			for _, a := range p.Aliases {
				if owner, dup := aliasOwner[a]; dup {
					t.Errorf("alias %s also belongs to %s", a, owner)
				}
				aliasOwner[a] = p.Name
				if got, ok := ForHost(strings.ToUpper(a) + "."); !ok || got.Name != p.Name {
					t.Errorf("alias %s resolves to %q, %v", a, got.Name, ok)
				}
			}
			for _, d := range p.Domains {
				if got, ok := ForHost("smtp." + d); !ok || !sameServers(got, p) {
					t.Errorf("a host under domain %s resolves to %q, %v", d, got.Name, ok)
				}
			}
			checkLimits(t, p.Limits)
			if o := p.OAuth; o != nil {
				checkOAuth(t, o)
			}
			for _, h := range p.Hints.Login {
				if h.Text == "" || len(h.Codes)+len(h.Texts) == 0 {
					t.Errorf("login hint %+v: no text, or nothing it answers", h)
				}
				for _, s := range h.Texts {
					if s != strings.ToLower(s) {
						t.Errorf("hint text fragment %q is not lower case: replies are matched lower-cased", s)
					}
				}
			}
			for _, m := range p.Marks {
				if m == "" || m != strings.ToLower(m) {
					t.Errorf("mark %q: empty or not lower case", m)
				}
			}
		})
	}
}

// sameServers reports whether two entries agree on everything a host
// decides.
func sameServers(a, b Provider) bool {
	return a.Port == b.Port && a.Security == b.Security && reflect.DeepEqual(a.Hints, b.Hints) &&
		slices.Equal(a.Marks, b.Marks) && a.OAuth == b.OAuth && a.SpacedAppPasswords == b.SpacedAppPasswords
}

func checkLimits(t *testing.T, l Limits) {
	t.Helper()
	for name, v := range map[string]int{"PerMinute": l.PerMinute, "PerDay": l.PerDay, "MaxConnections": l.MaxConnections,
		"PacePerMinute": l.PacePerMinute, "MaxRecipients": l.MaxRecipients} {
		if v < 0 {
			t.Errorf("limit %s is %d", name, v)
		}
	}
	// Within what a profile may set itself (tenant's validation).
	if l.MaxConnections > 100 || l.PacePerMinute > 60_000 || l.PerMinute > 1_000_000 || l.PerDay > 100_000_000 {
		t.Errorf("limits %+v beyond what a profile may set", l)
	}
	if l.PerMinute > 0 && l.PerDay > 0 && l.PerMinute > l.PerDay {
		t.Errorf("per minute %d above per day %d", l.PerMinute, l.PerDay)
	}
}

func checkOAuth(t *testing.T, o *OAuth) {
	t.Helper()
	if o.Label == "" || o.Scope == "" {
		t.Errorf("oauth %+v: no label or scope", o)
	}
	if o.Flow != FlowClientCredentials && o.Flow != FlowRefreshToken {
		t.Errorf("oauth flow %q", o.Flow)
	}
	for _, raw := range []string{o.AuthURLFor("contoso.example"), o.TokenURLFor("contoso.example")} {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.Host == "" || strings.Contains(raw, "{") {
			t.Errorf("oauth URL %q: not an https URL", raw)
		}
	}
	if strings.Contains(o.TokenURL, "{directory}") && o.TokenURLFor("") != "" {
		t.Errorf("token URL %s filled without a directory", o.TokenURL)
	}
}

func TestForHost(t *testing.T) {
	cases := map[string]string{
		"smtp.gmail.com":        "gmail",
		"SMTP.GoogleMail.com.":  "gmail",
		"smtp-relay.gmail.com":  "google",
		"smtp.office365.com":    "microsoft365",
		"outlook.office365.com": "microsoft365",
		"smtp-mail.outlook.com": "outlook",
		"smtp.mail.me.com":      "icloud",
		"smtp.example.com":      "",
		"gmail.com.example.org": "",
		"office365.com":         "",
		"":                      "",
	}
	for host, want := range cases {
		got, ok := ForHost(host)
		if got.Name != want || ok != (want != "") {
			t.Errorf("ForHost(%q) = %q, %v; want %q", host, got.Name, ok, want)
		}
	}
}

func TestForMX(t *testing.T) {
	cases := []struct {
		hosts []string
		want  string
	}{
		{[]string{"aspmx.l.google.com."}, "google"},
		{[]string{"ALT1.ASPMX.L.GOOGLE.COM", "aspmx2.googlemail.com"}, "google"},
		{[]string{"smtp.google.com"}, "google"},
		{[]string{"acme-corp-example.mail.protection.outlook.com."}, "microsoft365"},
		{[]string{"acme-example.l-v1.mx.microsoft"}, "microsoft365"},
		{[]string{"mx.zoho.com", "mx2.zoho.com", "mx3.zoho.com"}, "zoho"},
		{[]string{"mx.zoho.eu"}, "zoho"},
		{[]string{"mx01.mail.icloud.com", "mx02.mail.icloud.com"}, "icloud"},
		{[]string{"in1-smtp.messagingengine.com"}, "fastmail"},
		// The first known exchanger decides; unknown ones are passed over.
		{[]string{"mx.acme.example", "in2-smtp.messagingengine.com", "aspmx.l.google.com"}, "fastmail"},
		// A suffix matches below a dot, not inside a label.
		{[]string{"evilmail.protection.outlook.com"}, ""},
		{[]string{"google.com.acme.example"}, ""},
		{[]string{"mx.acme.example"}, ""},
		{[]string{"", "."}, ""},
		{nil, ""},
	}
	for _, c := range cases {
		got, ok := ForMX(c.hosts)
		if got.Name != c.want || ok != (c.want != "") {
			t.Errorf("ForMX(%q) = %q, %v; want %q", c.hosts, got.Name, ok, c.want)
		}
	}
	// A mail exchanger names one provider.
	seen := map[string]string{}
	for _, p := range table {
		for _, m := range p.MXHosts {
			if other, ok := seen[m]; ok {
				t.Errorf("%s is a mail exchanger of both %s and %s", m, other, p.Name)
			}
			seen[m] = p.Name
		}
	}
}

func TestForAddress(t *testing.T) {
	cases := map[string]string{
		"acme@gmail.com":      "gmail",
		"Acme@GoogleMail.COM": "gmail",
		"x@hotmail.com":       "outlook",
		"x@me.com":            "icloud",
		"x@zohomail.com":      "zoho",
		"x@acme.example":      "",
		"x@mail.gmail.com":    "",
		"gmail.com":           "",
		"":                    "",
	}
	for email, want := range cases {
		got, ok := ForAddress(email)
		if got.Name != want || ok != (want != "") {
			t.Errorf("ForAddress(%q) = %q, %v; want %q", email, got.Name, ok, want)
		}
	}
	// An address domain names one provider.
	seen := map[string]string{}
	for _, p := range table {
		for _, d := range p.Addresses {
			if other, ok := seen[d]; ok {
				t.Errorf("%s is an address domain of both %s and %s", d, other, p.Name)
			}
			seen[d] = p.Name
		}
	}
}

func TestLoginHint(t *testing.T) {
	cases := []struct {
		name, host string
		code       int
		enhanced   string
		text       string
		want       string // a fragment of the hint; "" for none
	}{
		{"google host, 5.7.8", "smtp.gmail.com", 535, "5.7.8", "Username and Password not accepted", "App Password"},
		{"google host, 534", "smtp-relay.gmail.com", 534, "", "Please log in", "App Password"},
		{"google by its reply", "mail.acme.example", 535, "5.7.8", "BadCredentials ... gsmtp", "App Password"},
		{"5.7.8 elsewhere", "mail.acme.example", 535, "5.7.8", "authentication failed", ""},
		{"basic auth disabled, any host", "mail.contoso.example", 535, "5.7.139", "Authentication unsuccessful", "microsoft365"},
		{"basic auth disabled by text", "mail.contoso.example", 535, "", "Authentication unsuccessful, basic authentication is disabled", "OAuth2"},
		{"smtp auth off for the mailbox", "smtp.office365.com", 535, "5.7.3", "", "Authenticated SMTP"},
		{"unknown", "smtp.example.com", 535, "5.7.8", "no", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := LoginHint(tc.host, tc.code, tc.enhanced, tc.text)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("LoginHint = %q, want one with %q", got, tc.want)
			}
		})
	}
	if TokenHint("outlook.office365.com") == "" || TokenHint("smtp.gmail.com") == "" || TokenHint("smtp.example.com") != "" {
		t.Error("TokenHint does not follow the hosts")
	}
}

// openapi.yaml's provider enum is the table's names.
func TestOpenAPIEnumIsTheTable(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../openapi.yaml")
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	in := doc.Components.Schemas["ProfileInput"]
	if in == nil || in.Value.Properties["provider"] == nil {
		t.Fatal("openapi.yaml has no ProfileInput.provider")
	}
	var enum []string
	for _, v := range in.Value.Properties["provider"].Value.Enum {
		s, _ := v.(string)
		enum = append(enum, s)
	}
	slices.Sort(enum)
	if !slices.Equal(enum, Names()) {
		t.Errorf("openapi.yaml ProfileInput.provider enum %v, the table %v", enum, Names())
	}
}
