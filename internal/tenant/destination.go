package tenant

import (
	"strings"

	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/validation"
)

// keepStoredSecrets fills in the secrets p leaves out (a settings form's
// blank password field) from stored, the profile p replaces, but only while
// p sends them where stored did. A secret was given for one destination:
// the password for one SMTP server (host and port), the OAuth client
// secret and refresh token for one token endpoint and client, and the
// access tokens they mint for one SMTP server. A profile that names
// another must carry the secret again (secret_required on its field), or
// anyone who may edit a profile could send the stored secret to a server
// of their choosing, this service's own verify included.
//
// Security, username and mechanism are not part of the destination: every
// mode verifies the server's certificate before any secret is sent, so a
// change of them still sends the secret only to the server that was
// trusted with it.
func keepStoredSecrets(p, stored *Profile, errs *validation.Error) {
	if stored == nil {
		return
	}
	moved := movedFields(p, stored)
	keep := func(field, what string, given *secret.String, old secret.String) {
		switch {
		case !given.IsZero() || old.IsZero(): // given anew, or nothing to keep
		case len(moved) > 0:
			errs.Add(field, "secret_required", "this profile changes "+strings.Join(moved, " and ")+
				": give the "+what+" again (a stored secret is only sent where it was given for)")
		default:
			*given = old
		}
	}
	if p.Auth != AuthXOAuth2 {
		keep("password", "password", &p.Password, stored.Password)
	}
	if p.OAuth != nil && stored.OAuth != nil {
		keep("oauth.client_secret", "client secret", &p.OAuth.ClientSecret, stored.OAuth.ClientSecret)
		keep("oauth.refresh_token", "refresh token", &p.OAuth.RefreshToken, stored.OAuth.RefreshToken)
	}
}

// movedFields names the parts of the destination p changes from stored,
// compared after presets and provider defaults are filled in.
func movedFields(p, stored *Profile) []string {
	var moved []string
	if p.Host != stored.Host {
		moved = append(moved, "host")
	}
	if p.Port != stored.Port {
		moved = append(moved, "port")
	}
	if p.OAuth != nil && stored.OAuth != nil {
		if p.OAuth.TokenURL != stored.OAuth.TokenURL {
			moved = append(moved, "oauth.token_url")
		}
		if p.OAuth.ClientID != stored.OAuth.ClientID {
			moved = append(moved, "oauth.client_id")
		}
	}
	return moved
}
