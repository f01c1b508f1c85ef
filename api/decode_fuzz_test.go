package api

import (
	"errors"
	"testing"

	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/validation"
)

// FuzzDecode feeds any body to the decoding of POST /v1/messages and PUT
// /v1/tenants/{id}/smtp: it must decode, or refuse with a 4xx problem or
// a field list, and never panic.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"tenant_id":"acme","to":[{"email":"a@b.c","name":"A"}],"subject":"Invoice 42","text":"hi","send_at":"2026-12-01T09:00:00Z"}`,
		`{"tenant_id":"acme","attachments":[{"filename":"a.pdf","content":"JVBERi0="}],"headers":{"X-Ref":"42"}}`,
		`{"email":"a@b.c","password":"abcd efgh","port":465,"oauth":{"client_id":"x"},"rate_limit":{"per_minute":10}}`,
		`{"subject":"a","subject":"b"}`, `{"Subject":"x"}`, "{\"text\":\"\xff\"}", `[[[[`, `{"to":[{"email":5}]}`,
		`{} {}`, ``, `null`, `"text"`, `{"send_at":"tomorrow"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, into := range []any{new(message.Request), new(tenant.Input), new(batchInput)} {
			_, err := decodeJSONBody(jsonContext(body), into)
			if err == nil {
				continue
			}
			var p *Problem
			var verr *validation.Error
			switch {
			case errors.As(err, &p):
				if p.Status < 400 || p.Status >= 500 {
					t.Fatalf("%q: %d %s", body, p.Status, p.Code)
				}
			case errors.As(err, &verr):
				if len(verr.Fields) == 0 || verr.Fields[0].Field == "" {
					t.Fatalf("%q: a field list without a field: %+v", body, verr.Fields)
				}
			default:
				t.Fatalf("%q: %T %v is neither a problem nor a field list", body, err, err)
			}
		}
	})
}
