package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/validation"
)

// TestDecodeRefusals pins what each kind of bad body is told: the problem
// code and detail for a body that is not one JSON object, the field and
// its code for one that does not fit the request.
func TestDecodeRefusals(t *testing.T) {
	cases := []struct {
		name, body string
		into       func() any
		code       string // problem code, or the field's code for validation errors
		want       string // in the detail, or the field's path
	}{
		{"empty", "", newMessage, "invalid_json", "empty"},
		{"blank", " \n\t", newMessage, "invalid_json", "empty"},
		{"truncated", `{"tenant_id": "acme", "to": [`, newMessage, "invalid_json", "ends before"},
		{"two objects", `{"tenant_id": "acme"} {}`, newMessage, "invalid_json", "after top-level value"},
		{"trailing text", `{"tenant_id": "acme"} x`, newMessage, "invalid_json", "after top-level value"},
		{"not JSON", `tenant_id=acme`, newMessage, "invalid_json", "malformed JSON"},
		{"name given twice", `{"subject": "Invoice 42", "subject": "Refund"}`, newMessage, "invalid_json", "subject appears twice"},
		{"nested name given twice", `{"to": [{"email": "a@b.c", "email": "d@e.f"}]}`, newMessage, "invalid_json", "to[0].email appears twice"},
		{"invalid UTF-8", "{\"subject\": \"\xff\"}", newMessage, "invalid_json", "UTF-8"},
		{"too deep", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), func() any { return new(any) }, "invalid_json", "depth"},
		{"array body", `[{"tenant_id": "acme"}]`, newMessage, "invalid_type", "(body)"},
		{"unknown field", `{"attachements": []}`, newMessage, "unknown_field", "attachements"},
		{"name in another case", `{"Subject": "Invoice 42"}`, newMessage, "unknown_field", "Subject"},
		{"nested unknown field", `{"to": [{"email": "a@b.c"}, {"mail": "d@e.f"}]}`, newMessage, "unknown_field", "to[1].mail"},
		{"wrong type", `{"to": [{"email": 42}]}`, newMessage, "invalid_type", "to[0].email"},
		{"wrong type in a map", `{"headers": {"X-Ref": 42}}`, newMessage, "invalid_type", "headers.X-Ref"},
		{"bad time", `{"send_at": "tomorrow"}`, newMessage, "invalid_type", "send_at"},
		{"number as a password", `{"email": "a@b.c", "password": 42}`, newProfileInput, "invalid_type", "password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeJSONBody(jsonContext(tc.body), tc.into())
			var p *Problem
			var verr *validation.Error
			switch {
			case errors.As(err, &p):
				if p.Code != tc.code || !strings.Contains(p.Detail, tc.want) {
					t.Fatalf("got %s %q, want %s with %q", p.Code, p.Detail, tc.code, tc.want)
				}
			case errors.As(err, &verr):
				if len(verr.Fields) != 1 || verr.Fields[0].Code != tc.code || verr.Fields[0].Field != tc.want {
					t.Fatalf("got %+v, want %s on %s", verr.Fields, tc.code, tc.want)
				}
			default:
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
}

// TestDecodeNamesExpectedTypes checks the message that says what a field
// takes, including types that decode from strings.
func TestDecodeNamesExpectedTypes(t *testing.T) {
	cases := []struct {
		body string
		into func() any
		want string
	}{
		{`{"send_at": 5}`, newMessage, "a date and time in RFC 3339 form"},
		{`{"to": "a@b.c"}`, newMessage, "an array"},
		{`{"from": "a@b.c"}`, newMessage, "an object"},
		{`{"subject": true}`, newMessage, "a string"},
		{`{"tags": [1]}`, newMessage, "a string"},
		{`{"port": "465"}`, newProfileInput, "a number"},
		{`{"enabled": 1}`, newProfileInput, "true or false"},
		{`{"password": {}}`, newProfileInput, "a string"},
	}
	for _, tc := range cases {
		_, err := decodeJSONBody(jsonContext(tc.body), tc.into())
		var verr *validation.Error
		if !errors.As(err, &verr) || len(verr.Fields) != 1 || verr.Fields[0].Message != "must be "+tc.want {
			t.Errorf("%s: got %v, want %q", tc.body, err, "must be "+tc.want)
		}
	}
}

func TestDecodeKeepsTheBody(t *testing.T) {
	const body = `{"tenant_id": "acme", "subject": "Invoice 42"}`
	var req message.Request
	got, err := decodeJSONBody(jsonContext(body), &req)
	if err != nil || string(got) != body || req.Subject != "Invoice 42" || req.TenantID != "acme" {
		t.Fatalf("got %q %+v %v", got, req, err)
	}
}

func newMessage() any      { return new(message.Request) }
func newProfileInput() any { return new(tenant.Input) }

// testEcho makes the contexts of the tests that call handlers directly.
var testEcho = echo.New()

// jsonContext is a context for a JSON POST of body, answered into a
// recorder.
func jsonContext(body string) echo.Context {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	return testEcho.NewContext(req, httptest.NewRecorder())
}
