package tenant

import (
	"errors"
	"slices"
	"testing"

	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/validation"
)

func gmailInput() Input {
	return Input{SenderName: "Acme Trading", Email: "acme@gmail.com", Password: secret.New("abcd efgh ijkl mnop"),
		Host: "smtp.gmail.com", Port: 465}
}

func TestBuildDefaults(t *testing.T) {
	p, err := Build("acme", gmailInput(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled || p.Security != SecurityTLS || p.Auth != AuthPlain || p.Username != "acme@gmail.com" {
		t.Errorf("defaults not applied: %+v", p)
	}
	if p.Password.Reveal() != "abcdefghijklmnop" {
		t.Errorf("gmail password spaces kept: %q", p.Password.Reveal())
	}

	in := gmailInput()
	in.Host, in.Port = "mail.example.com", 587
	p, err = Build("acme", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Security != SecurityStartTLS {
		t.Errorf("port 587 security = %q, want starttls", p.Security)
	}
	if p.Password.Reveal() != "abcd efgh ijkl mnop" {
		t.Errorf("non-gmail password altered: %q", p.Password.Reveal())
	}
}

func TestBuildPresets(t *testing.T) {
	type preset struct {
		host     string
		port     int
		security Security
	}
	for provider, want := range map[string]preset{
		"gmail":        {"smtp.gmail.com", 465, SecurityTLS},
		"outlook":      {"smtp-mail.outlook.com", 587, SecurityStartTLS},
		"microsoft365": {"smtp.office365.com", 587, SecurityStartTLS},
	} {
		t.Run(provider, func(t *testing.T) {
			p, err := Build("acme", Input{Provider: provider, Email: "a@example.com", Password: secret.New("pw")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.Host != want.host || p.Port != want.port || p.Security != want.security {
				t.Errorf("got %s:%d %s", p.Host, p.Port, p.Security)
			}
		})
	}
	// Given values win over the preset.
	p, err := Build("acme", Input{Provider: "gmail", Email: "a@example.com", Password: secret.New("pw"), Port: 587}, nil)
	if err != nil || p.Port != 587 || p.Security != SecurityStartTLS || p.Host != "smtp.gmail.com" {
		t.Errorf("preset overrode the given port: %+v %v", p, err)
	}
}

func TestBuildKeepsStoredPassword(t *testing.T) {
	stored, _ := Build("acme", gmailInput(), nil)
	stored.Version = 3
	in := gmailInput()
	in.Password = secret.String{}
	in.SenderName = "Acme Renamed"
	p, err := Build("acme", in, &stored)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Password.Equal(stored.Password) || p.SenderName != "Acme Renamed" || p.Version != 3 {
		t.Errorf("got %+v", p)
	}
}

func TestBuildValidation(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(*Input)
		fields []string
	}{
		{"new profile without password", func(in *Input) { in.Password = secret.String{} }, []string{"password"}},
		{"bad email", func(in *Input) { in.Email = "acme at gmail" }, []string{"email"}},
		{"email with display name", func(in *Input) { in.Email = "Acme <acme@gmail.com>" }, []string{"email"}},
		{"CRLF in sender name", func(in *Input) { in.SenderName = "Acme\r\nBcc: x@evil.example" }, []string{"sender_name"}},
		{"CRLF in username", func(in *Input) { in.Username = "acme\nx" }, []string{"username"}},
		{"NUL in password", func(in *Input) { in.Password = secret.New("pw\x00x") }, []string{"password"}},
		{"bad host", func(in *Input) { in.Host = "smtp gmail com" }, []string{"host"}},
		{"URL as host", func(in *Input) { in.Host = "smtps://smtp.gmail.com" }, []string{"host"}},
		{"port zero", func(in *Input) { in.Host, in.Port = "mail.example.com", 0 }, []string{"port"}},
		{"port too high", func(in *Input) { in.Port = 70000 }, []string{"port"}},
		{"bad security", func(in *Input) { in.Security = "none" }, []string{"security"}},
		{"bad auth", func(in *Input) { in.Auth = "cram-md5" }, []string{"auth"}},
		{"unknown provider", func(in *Input) { in.Provider = "hotmale" }, []string{"provider"}},
		{"long sender name", func(in *Input) { in.SenderName = string(make([]byte, 300)) }, []string{"sender_name"}},
		{"several at once", func(in *Input) { in.Email, in.Port = "", -1 }, []string{"email", "port"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := gmailInput()
			tc.edit(&in)
			_, err := Build("acme", in, nil)
			var verr *validation.Error
			if !errors.As(err, &verr) {
				t.Fatalf("err = %v, want *validation.Error", err)
			}
			var got []string
			for _, f := range verr.Fields {
				got = append(got, f.Field)
				if f.Code == "" || f.Message == "" {
					t.Errorf("field %s lacks code or message", f.Field)
				}
			}
			for _, want := range tc.fields {
				if !slices.Contains(got, want) {
					t.Errorf("fields %v lack %q", got, want)
				}
			}
		})
	}
}

func TestValidHost(t *testing.T) {
	for h, want := range map[string]bool{"smtp.gmail.com": true, "127.0.0.1": true, "::1": true, "localhost": true,
		"mail": false, "-bad.example": false, "a..b": false, "exa_mple.com": false} {
		if validHost(h) != want {
			t.Errorf("validHost(%q) = %v", h, !want)
		}
	}
}

func TestBuildDeliveryLimitsValidation(t *testing.T) {
	in := gmailInput()
	in.RateLimit = &RateLimit{PerMinute: 0, PerDay: -1}
	in.MaxConnections, in.PacePerMinute = 101, -1
	_, err := Build("acme", in, nil)
	var verr *validation.Error
	if !errors.As(err, &verr) {
		t.Fatal(err)
	}
	var fields []string
	for _, f := range verr.Fields {
		fields = append(fields, f.Field)
	}
	for _, want := range []string{"rate_limit.per_minute", "rate_limit.per_day", "max_connections", "pace_per_minute"} {
		if !slices.Contains(fields, want) {
			t.Errorf("no error for %s in %v", want, fields)
		}
	}
}
