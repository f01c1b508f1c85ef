package provider

// The table. Servers are each provider's published SMTP settings for mail
// clients. Limits are each provider's published figures for one account,
// where it publishes any (checked December 2026):
//
//   - google (Google Workspace), support.google.com/a/answer/166852: 2,000
//     messages a day (500 while the account is on trial, which we cannot
//     tell: an operator lowers rate_limit for such a tenant), 10,000
//     recipients a day, 100 recipients per message over smtp.gmail.com;
//     past a limit the account cannot send for up to 24 hours. PerDay is
//     the 2,000 messages as recipients (see Limits).
//   - gmail (consumer Gmail): about 500 a day, the figure commonly
//     reported for personal accounts; Google's help has said a message
//     sent from a mail client (POP/IMAP/SMTP) may have at most 100
//     recipients (quoted at wirya.id/2007/09/13/are-there-limits-for-sending-mail.html).
//   - microsoft365 (Exchange Online), learn.microsoft.com "Message storage
//     and concurrent connection throttling for SMTP Authenticated
//     Submission": 3 concurrent connections per mailbox (the next gets 432
//     4.3.2), 30 messages a minute (the excess is delayed, so a pace, not a
//     refusal), 10,000 recipients a day (past it, 554 5.2.0).
//   - outlook (Outlook.com), support.microsoft.com/office/sending-limits-in-outlook-com-279ee200-594c-40f0-9ec8-bb6af7735c2e:
//     5,000 recipients a day and 500 per message for Microsoft 365
//     subscribers; "lower for non-subscribers", with no figure. The
//     subscribers' figures are the ceiling we know; a free account may be
//     refused earlier (quota replies then hold it, see delivery).
//   - icloud, support.apple.com/en-us/102198: 1,000 messages a day, 1,000
//     recipients a day, 500 recipients per message.
//   - zoho, zoho.com/mail/help/adminconsole/rates-and-limits.html: 100
//     recipients per message on free accounts, 150 on paid ones (the lower
//     is the default); external mail 50 to 500 an hour, set by the
//     sender's reputation, which no fixed default can follow: none.
//   - yahoo: no published figure for Yahoo Mail accounts. Yahoo's help
//     gives 500 a day and 100 recipients per message for Yahoo Small
//     Business mail (help.yahoo.com SLN17518, now Turbify), a different
//     service on other servers: none.
//   - fastmail: its account limits page (fastmail.com/help/account/limits.html)
//     gives no sending figures we could read: none.
//
// MXHosts are the mail exchangers each provider's DNS setup instructions
// for a custom domain tell its owner to publish (written from those pages
// as we know them; these machines cannot reach them, so re-check a page
// before relying on its address):
//
//   - google, support.google.com/a/answer/174125: smtp.google.com for
//     domains set up since 2023; aspmx.l.google.com, alt1..alt4.aspmx.l.google.com
//     and aspmx2..aspmx5.googlemail.com before.
//   - microsoft365, learn.microsoft.com "Add DNS records to connect your
//     domain": <domain>.mail.protection.outlook.com; domains moved to
//     DNSSEC-signed mail flow get <domain>.<region>.mx.microsoft instead.
//   - zoho, zoho.com/mail/help/adminconsole/configure-email-delivery.html:
//     mx.zoho.com, mx2.zoho.com and mx3.zoho.com, or the same names under
//     the data centre's domain (zoho.eu, zoho.in, zoho.com.au, zoho.jp).
//   - icloud, support.apple.com/en-us/102374 (custom email domains in
//     iCloud+): mx01.mail.icloud.com and mx02.mail.icloud.com.
//   - fastmail, fastmail.com/help/receive/domains-advanced.html:
//     in1-smtp.messagingengine.com and in2-smtp.messagingengine.com.
//   - yahoo: none. A custom domain whose MX is under yahoodns.net is on
//     Yahoo Small Business (Turbify), whose accounts submit elsewhere than
//     this entry's server; suggesting Yahoo Mail would prefill a wrong one.
//
// gmail and outlook are consumer services with no custom domains.
//
// A provider's limits apply to a profile that names it and sets none of
// its own, and only where they are below the service's (see tenant.Limits).
//
// There is no per-provider quota hold: when an account is refused for its
// quota anyway, delivery holds it for OUTBOUND_QUOTA_HOLD (1 h) and then
// tries again. Holding Google's "up to 24 hours" would spend the whole
// default retry window (24 h) and fail the waiting mail, where trying
// hourly costs a refused attempt an hour.
var table = []Provider{
	{
		Name: "gmail", Label: "Gmail",
		Host: "smtp.gmail.com", Port: 465, Security: TLS,
		Addresses: []string{"gmail.com", "googlemail.com"},
		Aliases:   []string{"smtp.googlemail.com"},
		Marks:     googleMarks, SpacedAppPasswords: true,
		OAuth: googleOAuth, Hints: googleHints,
		Limits: Limits{PerDay: 500, MaxRecipients: 100},
	},
	{
		Name: "google", Label: "Google Workspace",
		Host: "smtp.gmail.com", Port: 465, Security: TLS,
		Aliases: []string{"smtp-relay.gmail.com"},
		MXHosts: []string{"smtp.google.com", "aspmx.l.google.com", ".aspmx.l.google.com", ".googlemail.com"},
		Marks:   googleMarks, SpacedAppPasswords: true,
		OAuth: googleOAuth, Hints: googleHints,
		Limits: Limits{PerDay: 2000, MaxRecipients: 100},
	},
	{
		Name: "outlook", Label: "Outlook.com",
		Host: "smtp-mail.outlook.com", Port: 587, Security: StartTLS,
		Addresses: []string{"outlook.com", "hotmail.com", "live.com", "msn.com"},
		Domains:   []string{"outlook.com"},
		Hints:     microsoftHints,
		Limits:    Limits{PerDay: 5000, MaxRecipients: 500},
	},
	{
		Name: "microsoft365", Label: "Microsoft 365",
		Host: "smtp.office365.com", Port: 587, Security: StartTLS,
		Domains: []string{"office365.com"},
		MXHosts: []string{".mail.protection.outlook.com", ".mx.microsoft"},
		OAuth:   microsoftOAuth, Hints: microsoftHints,
		Limits: Limits{PerDay: 10000, MaxConnections: 3, PacePerMinute: 30},
	},
	{
		Name: "yahoo", Label: "Yahoo Mail",
		Host: "smtp.mail.yahoo.com", Port: 465, Security: TLS,
		Addresses: []string{"yahoo.com", "ymail.com", "rocketmail.com"},
	},
	{
		Name: "icloud", Label: "iCloud Mail",
		Host: "smtp.mail.me.com", Port: 587, Security: StartTLS,
		Addresses: []string{"icloud.com", "me.com", "mac.com"},
		MXHosts:   []string{".mail.icloud.com"},
		Limits:    Limits{PerDay: 1000, MaxRecipients: 500},
	},
	{
		Name: "zoho", Label: "Zoho Mail",
		Host: "smtp.zoho.com", Port: 465, Security: TLS,
		Addresses: []string{"zoho.com", "zohomail.com"},
		MXHosts:   []string{"mx.zoho.com", "mx2.zoho.com", "mx3.zoho.com", ".zoho.eu", ".zoho.in", ".zoho.com.au", ".zoho.jp"},
		Limits:    Limits{MaxRecipients: 100},
	},
	{
		Name: "fastmail", Label: "Fastmail",
		Host: "smtp.fastmail.com", Port: 465, Security: TLS,
		Addresses: []string{"fastmail.com", "fastmail.fm"},
		MXHosts:   []string{"in1-smtp.messagingengine.com", "in2-smtp.messagingengine.com"},
	},
}

// Google's servers sign their replies "gsmtp" and link its help pages.
var googleMarks = []string{"gsmtp", "support.google.com"}

// OAuth2 settings from each provider's documentation for SMTP.
var (
	googleOAuth = &OAuth{
		Label:    "Google",
		AuthURL:  "https://accounts.google.com/o/oauth2/v2/auth",
		TokenURL: "https://oauth2.googleapis.com/token",
		Flow:     FlowRefreshToken,
		Scope:    "https://mail.google.com/",
		// developers.google.com/identity/openid-connect/openid-connect
		Platform: "google", SignInScope: "openid email",
		Issuer: "https://accounts.google.com", JWKSURL: "https://www.googleapis.com/oauth2/v3/certs",
	}
	microsoftOAuth = &OAuth{
		Label:    "Microsoft 365",
		AuthURL:  "https://login.microsoftonline.com/{directory}/oauth2/v2.0/authorize",
		TokenURL: "https://login.microsoftonline.com/{directory}/oauth2/v2.0/token",
		Flow:     FlowClientCredentials,
		// learn.microsoft.com/exchange/client-developer/legacy-protocols/
		// how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth:
		// the delegated SMTP scope is on outlook.office.com, the
		// client-credentials one (AppScope) on outlook.office365.com.
		Scope:    "https://outlook.office.com/SMTP.Send offline_access",
		AppScope: "https://outlook.office365.com/.default",
		// learn.microsoft.com/entra/identity-platform/id-tokens: a v2.0 ID
		// token's issuer names the account's own directory.
		Platform: "microsoft", SignInScope: "openid email",
		Issuer:  "https://login.microsoftonline.com/{tid}/v2.0",
		JWKSURL: "https://login.microsoftonline.com/{directory}/discovery/v2.0/keys",
	}
)

var googleHints = Hints{
	Login: []Hint{{
		Codes: []string{"5.7.9", "5.7.8", "534"},
		Text: "Google refused the login. Gmail needs an App Password: turn on 2-Step Verification for the Google account, " +
			"create an App Password (Google Account, Security, App passwords) and enter its 16 letters as the password. " +
			"The username is the full Gmail address.",
	}},
	Token: "Google refused the token. The refresh token must come from a consent with the https://mail.google.com/ " +
		"scope for this account, and the username must be that Gmail address.",
}

var microsoftHints = Hints{
	Login: []Hint{
		{
			Codes: []string{"5.7.139"}, Texts: []string{"basic authentication is disabled"}, Own: true,
			Text: "Microsoft 365 no longer accepts a password for SMTP on this account (basic authentication is disabled). " +
				"Switch the profile to OAuth2: \"provider\": \"microsoft365\" with an \"oauth\" block holding your directory_id " +
				"and an app registration's client_id and client_secret (the app needs the SMTP.SendAsApp permission).",
		},
		{
			Codes: []string{"5.7.3"}, Texts: []string{"smtpclientauthentication is disabled"}, Own: true,
			Text: "SMTP login is turned off for this mailbox. An administrator must enable Authenticated SMTP for it.",
		},
	},
	Token: "Microsoft 365 refused the token. Check that SMTP AUTH is enabled for the mailbox, that the app has the " +
		"SMTP.SendAsApp (or delegated SMTP.Send) permission with admin consent, and, for app tokens, that its service " +
		"principal is registered in Exchange Online and granted access to this mailbox.",
}
