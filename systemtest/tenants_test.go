package systemtest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func gmailProfile() map[string]any {
	return map[string]any{"enabled": true, "sender_name": "Acme Trading", "email": "acme@gmail.com",
		"username": "acme@gmail.com", "password": "abcd efgh ijkl mnop", "host": "smtp.gmail.com", "port": 465,
		"security": "tls", "auth": "plain", "fallback_to_default": false}
}

func TestProfileRoundTrip(t *testing.T) {
	h := newHarness(t, options{})
	path := "/v1/tenants/acme/smtp"

	if r := h.do("GET", path, h.adminToken, nil); r.status != http.StatusNotFound || r.code(t) != "not_found" {
		t.Fatalf("GET before PUT: %d %s", r.status, r.body)
	}
	r := h.do("PUT", path, h.adminToken, gmailProfile())
	if r.status != http.StatusCreated || r.header.Get("ETag") != `"1"` || r.header.Get("Location") != path {
		t.Fatalf("create: %d %v %s", r.status, r.header, r.body)
	}
	created := r.json(t)
	for field, want := range map[string]any{"tenant_id": "acme", "email": "acme@gmail.com", "host": "smtp.gmail.com",
		"port": float64(465), "security": "tls", "password_set": true, "version": float64(1), "enabled": true} {
		if created[field] != want {
			t.Errorf("%s = %v, want %v", field, created[field], want)
		}
	}

	in := gmailProfile()
	delete(in, "password") // a settings form with the password field left blank
	in["sender_name"] = "Acme Renamed"
	r = h.do("PUT", path, h.adminToken, in)
	if r.status != http.StatusOK || r.header.Get("ETag") != `"2"` || r.json(t)["password_set"] != true {
		t.Fatalf("replace: %d %s", r.status, r.body)
	}
	in["password"] = ""
	if r = h.do("PUT", path, h.adminToken, in); r.status != http.StatusOK || r.json(t)["password_set"] != true {
		t.Fatalf("replace with empty password: %d %s", r.status, r.body)
	}

	r = h.do("GET", path, h.adminToken, nil)
	got := r.json(t)
	if r.status != 200 || got["sender_name"] != "Acme Renamed" || got["version"] != float64(3) || got["created_at"] != created["created_at"] {
		t.Fatalf("GET: %s", r.body)
	}

	// The password appears in no response and not in clear text in Redis,
	// neither as entered nor with Google's spaces removed.
	for _, secret := range []string{"abcd efgh ijkl mnop", "abcdefghijklmnop"} {
		h.assertNeverAnswered(t, secret)
		assertNotInRedis(t, h, secret)
		if strings.Contains(h.logs.String(), secret) {
			t.Error("logs hold the password")
		}
	}

	if r = h.do("DELETE", path, h.adminToken, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	if r = h.do("DELETE", path, h.adminToken, nil); r.status != http.StatusNotFound {
		t.Fatalf("second DELETE: %d", r.status)
	}
	if r = h.do("PUT", path, h.adminToken, in); r.status != http.StatusUnprocessableEntity || !hasField(t, r, "password") {
		t.Fatalf("new profile without password: %d %s", r.status, r.body)
	}
}

// assertNotInRedis scans every key and value.
func assertNotInRedis(t *testing.T, h *harness, secret string) {
	t.Helper()
	ctx := context.Background()
	keys, err := h.rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		var values []string
		switch h.rdb.Type(ctx, k).Val() {
		case "hash":
			for f, v := range h.rdb.HGetAll(ctx, k).Val() {
				values = append(values, f, v)
			}
		case "string":
			values = append(values, h.rdb.Get(ctx, k).Val())
		}
		for _, v := range append(values, k) {
			if strings.Contains(v, secret) {
				t.Errorf("Redis key %s holds the password in clear text", k)
			}
		}
	}
}

func hasField(t *testing.T, r response, field string) bool {
	t.Helper()
	errs, _ := r.json(t)["errors"].([]any)
	for _, e := range errs {
		if m, _ := e.(map[string]any); m["field"] == field {
			return true
		}
	}
	return false
}

func TestProfileIfMatch(t *testing.T) {
	h := newHarness(t, options{})
	path := "/v1/tenants/acme/smtp"
	if r := h.do("PUT", path, h.adminToken, gmailProfile(), "If-Match", `"1"`); r.status != http.StatusPreconditionFailed || r.code(t) != "precondition_failed" {
		t.Fatalf("If-Match on a missing profile: %d %s", r.status, r.body)
	}
	h.do("PUT", path, h.adminToken, gmailProfile())
	h.do("PUT", path, h.adminToken, gmailProfile()) // version 2

	for _, stale := range []string{`"1"`, `W/"1"`, `"garbage"`} {
		if r := h.do("PUT", path, h.adminToken, gmailProfile(), "If-Match", stale); r.status != http.StatusPreconditionFailed {
			t.Errorf("stale If-Match %s: %d", stale, r.status)
		}
	}
	if r := h.do("PUT", path, h.adminToken, gmailProfile(), "If-Match", `"2"`); r.status != http.StatusOK || r.header.Get("ETag") != `"3"` {
		t.Fatalf("current If-Match: %d %s", r.status, r.body)
	}
	if r := h.do("DELETE", path, h.adminToken, nil, "If-Match", `"2"`); r.status != http.StatusPreconditionFailed {
		t.Fatalf("stale DELETE: %d", r.status)
	}
	if r := h.do("DELETE", path, h.adminToken, nil, "If-Match", `"3"`); r.status != http.StatusNoContent {
		t.Fatalf("DELETE with current If-Match: %d", r.status)
	}
	if r := h.do("DELETE", path, h.adminToken, nil, "If-Match", `"3"`); r.status != http.StatusPreconditionFailed {
		t.Fatalf("If-Match DELETE on a missing profile: %d", r.status)
	}
}

func TestProfileValidation(t *testing.T) {
	h := newHarness(t, options{})
	bad := gmailProfile()
	bad["email"] = "not an address"
	bad["port"] = 70000
	bad["sender_name"] = "Acme\r\nBcc: victim@example.com"
	r := h.do("PUT", "/v1/tenants/acme/smtp", h.adminToken, bad)
	if r.status != http.StatusUnprocessableEntity || r.code(t) != "validation_failed" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for _, f := range []string{"email", "port", "sender_name"} {
		if !hasField(t, r, f) {
			t.Errorf("no error listed for %s: %s", f, r.body)
		}
	}
	cases := []struct {
		name, path, body, code string
		status                 int
	}{
		{"invalid tenant id", "/v1/tenants/-acme/smtp", `{}`, "invalid_tenant_id", 400},
		{"tenant id too long", "/v1/tenants/" + strings.Repeat("a", 65) + "/smtp", `{}`, "invalid_tenant_id", 400},
		{"truncated JSON", "/v1/tenants/acme/smtp", `{"email": "a@b.c"`, "invalid_json", 400},
		{"wrong type", "/v1/tenants/acme/smtp", `{"email": "a@b.c", "port": "465"}`, "validation_failed", 422},
		{"unknown field", "/v1/tenants/acme/smtp", `{"email": "a@b.c", "pasword": "x"}`, "validation_failed", 422},
		{"two objects", "/v1/tenants/acme/smtp", `{"email": "a@b.c"} {}`, "invalid_json", 400},
		{"too large", "/v1/tenants/acme/smtp", `{"sender_name": "` + strings.Repeat("x", 70<<10) + `"}`, "payload_too_large", 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("PUT", tc.path, h.adminToken, tc.body)
			if r.status != tc.status || r.code(t) != tc.code {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	r = h.do("PUT", "/v1/tenants/acme/smtp", h.adminToken, `{"email": "a@b.c"}`, "Content-Type", "text/plain")
	if r.status != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: %d %s", r.status, r.body)
	}
}

func TestAuth(t *testing.T) {
	h := newHarness(t, options{})
	cases := []struct {
		name, method, path, token string
		status                    int
		code                      string
	}{
		{"no token", "GET", "/v1/tenants/acme/smtp", "", 401, "unauthorized"},
		{"wrong token", "GET", "/v1/tenants/acme/smtp", "obk_not-a-real-token", 401, "unauthorized"},
		{"send token on admin route", "GET", "/v1/tenants/acme/smtp", h.sendToken, 403, "forbidden"},
		{"send token on admin PUT", "PUT", "/v1/tenants/acme/smtp", h.sendToken, 403, "forbidden"},
		{"send token on verify", "POST", "/v1/tenants/acme/smtp/verify", h.sendToken, 403, "forbidden"},
		{"no token on messages", "POST", "/v1/messages", "", 401, "unauthorized"},
		{"no token on status", "GET", "/v1/messages/x", "", 401, "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.method, tc.path, tc.token, nil)
			if r.status != tc.status || r.code(t) != tc.code {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Error("401 without WWW-Authenticate: Bearer")
			}
		})
	}
	// Admin may do what send may.
	if r := h.do("GET", "/v1/messages/nope", h.adminToken, nil); r.status != http.StatusNotFound {
		t.Fatalf("admin token on a send route: %d", r.status)
	}
	// Scheme is case-insensitive; a Basic header is not a bearer token.
	if r := h.do("GET", "/v1/messages/nope", "", nil, "Authorization", "bearer "+h.sendToken); r.status != http.StatusNotFound {
		t.Errorf("lower-case scheme: %d", r.status)
	}
	if r := h.do("GET", "/v1/messages/nope", "", nil, "Authorization", "Basic "+h.sendToken); r.status != http.StatusUnauthorized {
		t.Errorf("Basic scheme: %d", r.status)
	}
}

func TestRequestID(t *testing.T) {
	h := newHarness(t, options{})
	if r := h.do("GET", "/healthz", "", nil, "X-Request-Id", "caller-123"); r.header.Get("X-Request-Id") != "caller-123" {
		t.Errorf("caller's id not honoured: %q", r.header.Get("X-Request-Id"))
	}
	r := h.do("GET", "/healthz", "", nil, "X-Request-Id", "bad id\twith spaces")
	if id := r.header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") {
		t.Errorf("unsafe caller id echoed: %q", id)
	}
	a := h.do("GET", "/nowhere", "", nil)
	b := h.do("GET", "/nowhere", "", nil)
	if a.status != 404 || a.code(t) != "not_found" || a.header.Get("X-Request-Id") == b.header.Get("X-Request-Id") {
		t.Errorf("generated ids not unique or 404 not a problem: %s", a.body)
	}
}

func TestReadiness(t *testing.T) {
	h := newHarness(t, options{})
	if r := h.do("GET", "/readyz", "", nil); r.status != http.StatusOK {
		t.Fatalf("readyz with Redis up: %d", r.status)
	}
	h.redis.Stop(t)
	start := time.Now()
	r := h.do("GET", "/readyz", "", nil)
	if r.status != http.StatusServiceUnavailable || r.code(t) != "unavailable" {
		t.Fatalf("readyz with Redis down: %d %s", r.status, r.body)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("readyz took %v with Redis down", took)
	}
	if r := h.do("GET", "/healthz", "", nil); r.status != http.StatusOK {
		t.Errorf("healthz with Redis down: %d", r.status)
	}
	if r := h.do("GET", "/v1/tenants/acme/smtp", h.adminToken, nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("API with Redis down: %d %s", r.status, r.body)
	}
	h.redis.Restart(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := h.do("GET", "/readyz", "", nil)
		if r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d after Redis came back", r.status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
