package app

import (
	"github.com/outbound-mail/outbound/internal/config"
	"github.com/outbound-mail/outbound/internal/connect"
)

// signInApps are the connect page's sign-in apps the configuration holds,
// with a test's endpoints where it gave any.
func signInApps(cfg config.Config, endpoints map[string]SignInEndpoints) []connect.App {
	var apps []connect.App
	for _, a := range []struct {
		platform string
		c        config.OAuthApp
	}{{"google", cfg.GoogleApp}, {"microsoft", cfg.MicrosoftApp}} {
		platform, c := a.platform, a.c
		if !c.Enabled() {
			continue
		}
		e := endpoints[platform]
		apps = append(apps, connect.App{Platform: platform, ClientID: c.ClientID, ClientSecret: c.ClientSecret,
			Directory: c.Directory, AuthURL: e.AuthURL, TokenURL: e.TokenURL, JWKSURL: e.JWKSURL, Issuer: e.Issuer})
	}
	return apps
}
