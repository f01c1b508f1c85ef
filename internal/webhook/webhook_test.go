package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/validation"
)

func TestSignAndVerify(t *testing.T) {
	now := time.Now()
	body := []byte(`{"id":"evt_1"}`)
	h := Sign("whsec_x", now, body)
	if !strings.HasPrefix(h, "t=") || !strings.Contains(h, ",v1=") {
		t.Fatalf("header %q", h)
	}
	if err := Verify(h, "whsec_x", body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]error{
		"tampered body": Verify(h, "whsec_x", []byte(`{"id":"evt_2"}`), now, time.Minute),
		"other secret":  Verify(h, "whsec_y", body, now, time.Minute),
		"replayed late": Verify(h, "whsec_x", body, now.Add(10*time.Minute), time.Minute),
		"malformed":     Verify("v1=abc", "whsec_x", body, now, time.Minute),
	} {
		if check == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestBuild(t *testing.T) {
	h, generated, err := Build("ops", Input{URL: "https://hooks.example/x", Events: []string{"message.sent", "message.sent"}}, nil)
	if err != nil || !generated || !strings.HasPrefix(h.Secret.Reveal(), "whsec_") || len(h.Events) != 1 {
		t.Fatalf("%+v %v %v", h, generated, err)
	}
	again, generated, _ := Build("ops", Input{URL: "https://hooks.example/y", Events: []string{"message.failed"}}, &h)
	if generated || !again.Secret.Equal(h.Secret) {
		t.Fatal("a replaced webhook lost its secret")
	}
	given, generated, _ := Build("ops", Input{URL: "https://hooks.example/x", Events: []string{"message.sent"}, Secret: secret.New("mine")}, nil)
	if generated || given.Secret.Reveal() != "mine" {
		t.Fatal("given secret not kept")
	}
	_, _, err = Build("bad name!", Input{URL: "ftp://x", Events: []string{"message.opened"}, TenantID: "-x"}, nil)
	var verr *validation.Error
	if !errors.As(err, &verr) || len(verr.Fields) != 4 {
		t.Fatalf("want name, url, events[0], tenant_id refused: %v", err)
	}
}

// Events carry message ids, tenants and metadata, and the signature only
// proves who sent them: they travel over TLS or not at all.
func TestBuildRequiresHTTPS(t *testing.T) {
	for _, raw := range []string{"http://hooks.example/x", "HTTP://hooks.example/x", "http://127.0.0.1:8080/hook"} {
		_, _, err := Build("ops", Input{URL: raw, Events: []string{"message.sent"}}, nil)
		var verr *validation.Error
		if !errors.As(err, &verr) || len(verr.Fields) != 1 || verr.Fields[0].Field != "url" || verr.Fields[0].Code != "https_required" {
			t.Errorf("%s: %v, want url https_required", raw, err)
		}
	}
	if _, _, err := Build("ops", Input{URL: "HTTPS://hooks.example/x", Events: []string{"message.sent"}}, nil); err != nil {
		t.Errorf("an upper-case https scheme refused: %v", err)
	}
}

func TestWants(t *testing.T) {
	all := Hook{Events: EventTypes}
	acmeOnly := Hook{Events: EventTypes, TenantID: "acme"}
	everyDeferral := Hook{Events: EventTypes, EveryDeferral: true}
	sentOnly := Hook{Events: []string{"message.sent"}}
	cases := []struct {
		name string
		h    Hook
		ev   queue.Event
		want bool
	}{
		{"matching event", all, queue.Event{Type: "message.sent", TenantID: "beta"}, true},
		{"event not asked for", sentOnly, queue.Event{Type: "message.failed"}, false},
		{"tenant filter, same tenant", acmeOnly, queue.Event{Type: "message.sent", TenantID: "acme"}, true},
		{"tenant filter, other tenant", acmeOnly, queue.Event{Type: "message.sent", TenantID: "beta"}, false},
		{"first deferral", all, queue.Event{Type: "message.deferred", First: true}, true},
		{"later deferral by default", all, queue.Event{Type: "message.deferred"}, false},
		{"later deferral with every_deferral", everyDeferral, queue.Event{Type: "message.deferred"}, true},
	}
	for _, tc := range cases {
		if got := wants(tc.h, tc.ev); got != tc.want {
			t.Errorf("%s: wants = %v", tc.name, got)
		}
	}
}
