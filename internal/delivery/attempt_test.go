package delivery

import (
	jsonv1 "encoding/json"
	"reflect"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/outbound-mail/outbound/internal/message"
)

// TestStoredRequestsStayReadable decodes payloads that encoding/json v1
// accepted (and earlier replicas stored) and expects what v1 read from
// them, so a rolling deploy loses no queued message.
func TestStoredRequestsStayReadable(t *testing.T) {
	payloads := map[string]string{
		"as written today":      `{"tenant_id":"acme","to":[{"email":"a@b.c","name":"A"}],"subject":"Invoice 42","text":"Hi","headers":{"X-Ref":"42"},"send_at":"2026-12-01T09:00:00Z"}`,
		"names in another case": `{"Tenant_ID":"acme","TO":[{"Email":"a@b.c"}],"Subject":"Invoice 42","Text":"Hi"}`,
		"a name given twice":    `{"tenant_id":"acme","subject":"first","subject":"second","to":[{"email":"x@y.z"}],"to":[{"email":"a@b.c"}]}`,
		"invalid UTF-8":         "{\"tenant_id\":\"acme\",\"subject\":\"caf\xe9\",\"text\":\"\xff\xfe\"}",
		"unknown field":         `{"tenant_id":"acme","subject":"Invoice 42","priority":"high"}`,
	}
	for name, payload := range payloads {
		t.Run(name, func(t *testing.T) {
			var want, got message.Request
			if err := jsonv1.Unmarshal([]byte(payload), &want); err != nil {
				t.Fatalf("v1: %v", err)
			}
			if err := json.Unmarshal([]byte(payload), &got, storedRequest); err != nil {
				t.Fatalf("stored payload unreadable: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("read\n%+v\nv1 read\n%+v", got, want)
			}
		})
	}
}
