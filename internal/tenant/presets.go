package tenant

import (
	"maps"
	"slices"
)

// preset is a provider's submission server, filled in where the operator
// left host, port or security out.
type preset struct {
	host     string
	port     int
	security Security
}

// presets by provider name. Sources: each provider's published SMTP
// settings for mail clients.
var presets = map[string]preset{
	"gmail":        {"smtp.gmail.com", 465, SecurityTLS},
	"google":       {"smtp.gmail.com", 465, SecurityTLS},
	"outlook":      {"smtp-mail.outlook.com", 587, SecurityStartTLS},
	"microsoft365": {"smtp.office365.com", 587, SecurityStartTLS},
	"yahoo":        {"smtp.mail.yahoo.com", 465, SecurityTLS},
	"icloud":       {"smtp.mail.me.com", 587, SecurityStartTLS},
	"zoho":         {"smtp.zoho.com", 465, SecurityTLS},
	"fastmail":     {"smtp.fastmail.com", 465, SecurityTLS},
}

func (pr preset) fill(p *Profile) {
	if p.Host == "" {
		p.Host = pr.host
	}
	if p.Port == 0 {
		p.Port = pr.port
	}
	if p.Security == "" && p.Port == pr.port {
		p.Security = pr.security
	}
}

func presetNames() []string {
	return slices.Sorted(maps.Keys(presets))
}
