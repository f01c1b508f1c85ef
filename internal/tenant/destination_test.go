package tenant

import (
	"errors"
	"testing"

	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/validation"
)

// fieldCodes lists err's field errors as field → code.
func fieldCodes(t *testing.T, err error) map[string]string {
	t.Helper()
	out := map[string]string{}
	var verr *validation.Error
	if err != nil && !errors.As(err, &verr) {
		t.Fatalf("not a validation error: %v", err)
	}
	if verr != nil {
		for _, f := range verr.Fields {
			out[f.Field] = f.Code
		}
	}
	return out
}

func TestStoredPasswordKeptOnlyForItsServer(t *testing.T) {
	stored, err := Build("acme", gmailInput(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		edit  func(*Input)
		moved bool
	}{
		"nothing":             {func(in *Input) {}, false},
		"host in other case":  {func(in *Input) { in.Host = "SMTP.Gmail.com." }, false},
		"security":            {func(in *Input) { in.Security = SecurityStartTLS }, false},
		"username":            {func(in *Input) { in.Username = "other@gmail.com" }, false},
		"mechanism":           {func(in *Input) { in.Auth = AuthLogin }, false},
		"host":                {func(in *Input) { in.Host = "smtp.elsewhere.example" }, true},
		"port":                {func(in *Input) { in.Port = 587 }, true},
		"host through preset": {func(in *Input) { in.Provider, in.Host, in.Port = "outlook", "", 0 }, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := gmailInput()
			in.Password = secret.String{}
			tc.edit(&in)
			p, err := Build("acme", in, &stored)
			codes := fieldCodes(t, err)
			if tc.moved {
				if codes["password"] != "secret_required" || len(codes) != 1 {
					t.Fatalf("errors %v, want only password: secret_required", codes)
				}
				return
			}
			if err != nil || !p.Password.Equal(stored.Password) {
				t.Fatalf("password not kept: %v", err)
			}
		})
	}
	// A password given again goes anywhere.
	in := gmailInput()
	in.Host = "smtp.elsewhere.example"
	if _, err := Build("acme", in, &stored); err != nil {
		t.Fatal(err)
	}
}

func TestStoredOAuthSecretsKeptOnlyForTheirEndpoint(t *testing.T) {
	in := microsoftInput()
	in.OAuth.Flow, in.OAuth.RefreshToken = FlowRefreshToken, secret.New("rt")
	stored, err := Build("contoso", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		edit  func(*Input)
		moved bool
	}{
		"nothing":   {func(in *Input) {}, false},
		"scope":     {func(in *Input) { in.OAuth.Scope = "https://outlook.office365.com/SMTP.Send" }, false},
		"directory": {func(in *Input) { in.OAuth.DirectoryID = "fabrikam.onmicrosoft.com" }, true},
		"token url": {func(in *Input) { in.OAuth.TokenURL = "https://login.elsewhere.example/token" }, true},
		"client id": {func(in *Input) { in.OAuth.ClientID = "other-app" }, true},
		"smtp host": {func(in *Input) { in.Host = "smtp.elsewhere.example" }, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := microsoftInput()
			in.OAuth.Flow, in.OAuth.ClientSecret = FlowRefreshToken, secret.String{}
			tc.edit(&in)
			p, err := Build("contoso", in, &stored)
			codes := fieldCodes(t, err)
			if tc.moved {
				if codes["oauth.client_secret"] != "secret_required" || codes["oauth.refresh_token"] != "secret_required" || len(codes) != 2 {
					t.Fatalf("errors %v, want secret_required on both secrets", codes)
				}
				return
			}
			if err != nil || !p.OAuth.ClientSecret.Equal(stored.OAuth.ClientSecret) || !p.OAuth.RefreshToken.Equal(stored.OAuth.RefreshToken) {
				t.Fatalf("secrets not kept: %v", err)
			}
		})
	}
}
