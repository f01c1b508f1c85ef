package tenant

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/outbound-mail/outbound/internal/provider"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/validation"
)

// OAuth2 grant types a profile can use to get SMTP access tokens.
const (
	// FlowClientCredentials: an app's own identity (Microsoft 365 with
	// SMTP.SendAsApp).
	FlowClientCredentials = provider.FlowClientCredentials
	// FlowRefreshToken: a user's consent, kept as a refresh token (Google,
	// or Microsoft delegated SMTP.Send).
	FlowRefreshToken = provider.FlowRefreshToken
)

// OAuth is how an xoauth2 profile gets its access tokens.
type OAuth struct {
	Flow         string
	TokenURL     string
	ClientID     string
	ClientSecret secret.String
	RefreshToken secret.String
	Scope        string
	DirectoryID  string // Microsoft Entra directory (tenant) id or domain, for the token URL
}

// OAuthInput is the "oauth" block of a profile as submitted. Absent
// secrets keep the stored ones, like the password.
type OAuthInput struct {
	Flow         string        `json:"flow,omitempty"`
	TokenURL     string        `json:"token_url,omitempty"`
	ClientID     string        `json:"client_id,omitempty"`
	ClientSecret secret.String `json:"client_secret,omitzero"`
	RefreshToken secret.String `json:"refresh_token,omitzero"`
	Scope        string        `json:"scope,omitempty"`
	DirectoryID  string        `json:"directory_id,omitempty"`
}

const (
	maxOAuthField = 1024
	maxClientID   = 256
)

var directoryPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,127}$`)

// buildOAuth turns the submitted block into the profile's, filling
// provider defaults. Secrets it leaves out are kept by keepStoredSecrets.
func buildOAuth(providerName string, in *OAuthInput) *OAuth {
	if in == nil {
		return nil
	}
	o := &OAuth{Flow: strings.TrimSpace(in.Flow), TokenURL: strings.TrimSpace(in.TokenURL),
		ClientID: strings.TrimSpace(in.ClientID), ClientSecret: in.ClientSecret, RefreshToken: in.RefreshToken,
		Scope: strings.TrimSpace(in.Scope), DirectoryID: strings.TrimSpace(in.DirectoryID)}
	pr, _ := provider.ByName(providerName)
	if d := pr.OAuth; d != nil {
		// The provider's defaults (see the provider table).
		if o.Flow == "" {
			o.Flow = d.Flow
		}
		if o.TokenURL == "" {
			o.TokenURL = d.TokenURLFor(o.DirectoryID)
		}
		if o.Scope == "" {
			o.Scope = d.ScopeFor(o.Flow)
		}
	}
	return o
}

func (o *OAuth) validate(errs *validation.Error) {
	errs.Text("oauth.client_id", o.ClientID, maxClientID)
	errs.Text("oauth.client_secret", o.ClientSecret.Reveal(), maxOAuthField*4)
	errs.Text("oauth.refresh_token", o.RefreshToken.Reveal(), maxOAuthField*4)
	errs.Text("oauth.scope", o.Scope, maxOAuthField)
	switch o.Flow {
	case FlowClientCredentials:
		if o.ClientSecret.IsZero() && !errs.Has("oauth.client_secret") {
			errs.Add("oauth.client_secret", "required", "the client credentials flow needs the app's client secret")
		}
	case FlowRefreshToken:
		if o.RefreshToken.IsZero() && !errs.Has("oauth.refresh_token") {
			errs.Add("oauth.refresh_token", "required", "the refresh token flow needs a refresh token from the user's consent")
		}
	default:
		errs.Add("oauth.flow", "invalid_value", `must be "client_credentials" or "refresh_token"`)
	}
	if o.ClientID == "" {
		errs.Add("oauth.client_id", "required", "the app (client) id")
	}
	if o.DirectoryID != "" && !directoryPattern.MatchString(o.DirectoryID) {
		errs.Add("oauth.directory_id", "invalid_value", "a directory (tenant) id or domain")
	}
	u, err := url.Parse(o.TokenURL)
	switch {
	case o.TokenURL == "":
		errs.Add("oauth.token_url", "required", "the token endpoint (or directory_id with provider microsoft365)")
	case err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || validation.HasControl(o.TokenURL):
		errs.Add("oauth.token_url", "invalid_url", "must be an https:// URL")
	}
}
