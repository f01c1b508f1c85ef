package tenant

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/validation"
)

func microsoftInput() Input {
	return Input{Provider: "microsoft365", Email: "billing@contoso.example",
		OAuth: &OAuthInput{DirectoryID: "contoso.onmicrosoft.com", ClientID: "app-id", ClientSecret: secret.New("app-secret")}}
}

func TestOAuthPresets(t *testing.T) {
	p, err := Build("contoso", microsoftInput(), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := p.OAuth
	if p.Auth != AuthXOAuth2 || p.Host != "smtp.office365.com" || p.Port != 587 || p.Security != SecurityStartTLS ||
		o.Flow != FlowClientCredentials || o.Scope != "https://outlook.office365.com/.default" ||
		o.TokenURL != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token" {
		t.Fatalf("microsoft365: %+v %+v", p, o)
	}
	if !p.Password.IsZero() {
		t.Error("an OAuth profile holds a password")
	}

	g, err := Build("acme", Input{Provider: "gmail", Email: "acme@gmail.com",
		OAuth: &OAuthInput{ClientID: "id.apps.googleusercontent.com", ClientSecret: secret.New("s"), RefreshToken: secret.New("1//rt")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Auth != AuthXOAuth2 || g.OAuth.Flow != FlowRefreshToken || g.OAuth.Scope != "https://mail.google.com/" ||
		g.OAuth.TokenURL != "https://oauth2.googleapis.com/token" || g.Host != "smtp.gmail.com" {
		t.Fatalf("gmail: %+v %+v", g, g.OAuth)
	}
}

func TestOAuthValidation(t *testing.T) {
	cases := map[string]struct {
		edit  func(*Input)
		field string
	}{
		"client credentials without secret": {func(in *Input) { in.OAuth.ClientSecret = secret.String{} }, "oauth.client_secret"},
		"refresh flow without token":        {func(in *Input) { in.OAuth.Flow = FlowRefreshToken }, "oauth.refresh_token"},
		"plain http token endpoint":         {func(in *Input) { in.OAuth.TokenURL = "http://login.example/token" }, "oauth.token_url"},
		"no token endpoint":                 {func(in *Input) { in.Provider, in.Host, in.Port, in.OAuth.DirectoryID = "", "smtp.example.com", 587, "" }, "oauth.token_url"},
		"unknown flow":                      {func(in *Input) { in.OAuth.Flow = "password" }, "oauth.flow"},
		"no client id":                      {func(in *Input) { in.OAuth.ClientID = "" }, "oauth.client_id"},
		"xoauth2 without block":             {func(in *Input) { in.OAuth, in.Auth = nil, AuthXOAuth2 }, "oauth"},
		"block with plain auth":             {func(in *Input) { in.Auth = AuthPlain }, "oauth"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := microsoftInput()
			tc.edit(&in)
			_, err := Build("contoso", in, nil)
			var verr *validation.Error
			if !errors.As(err, &verr) {
				t.Fatalf("err = %v", err)
			}
			var fields []string
			for _, f := range verr.Fields {
				fields = append(fields, f.Field)
			}
			if !slices.Contains(fields, tc.field) {
				t.Fatalf("fields %v lack %s", fields, tc.field)
			}
		})
	}
}

func TestOAuthStore(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		store := NewStore(rdb, mustSealer(t, seal.NewKey()))
		in := microsoftInput()
		in.OAuth.Flow, in.OAuth.RefreshToken = FlowRefreshToken, secret.New("refresh-one")
		p, err := Build("contoso", in, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Put(ctx, p, 0); err != nil {
			t.Fatal(err)
		}
		for field, v := range rdb.HGetAll(ctx, Key("contoso")).Val() {
			if strings.Contains(v, "app-secret") || strings.Contains(v, "refresh-one") {
				t.Errorf("field %s holds a secret in clear text", field)
			}
		}
		got, err := store.Get(ctx, "contoso")
		if err != nil {
			t.Fatal(err)
		}
		if got.OAuth == nil || got.OAuth.ClientSecret.Reveal() != "app-secret" || got.OAuth.RefreshToken.Reveal() != "refresh-one" ||
			got.OAuth.ClientID != "app-id" || got.OAuth.Flow != FlowRefreshToken {
			t.Fatalf("got %+v", got.OAuth)
		}

		// A PUT without the secrets keeps them.
		in.OAuth.ClientSecret, in.OAuth.RefreshToken = secret.String{}, secret.String{}
		p2, err := Build("contoso", in, &got)
		if err != nil {
			t.Fatal(err)
		}
		saved, err := store.Put(ctx, p2, got.Version)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.SetRefreshToken(ctx, "contoso", saved.Version, secret.New("refresh-two")); err != nil {
			t.Fatal(err)
		}
		got, _ = store.Get(ctx, "contoso")
		if got.OAuth.ClientSecret.Reveal() != "app-secret" || got.OAuth.RefreshToken.Reveal() != "refresh-two" || got.Version != saved.Version {
			t.Fatalf("after keep and rotate: %+v version %d", got.OAuth, got.Version)
		}
	})
}
