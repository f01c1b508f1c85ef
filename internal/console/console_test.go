package console

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/redistest"
)

// Behind an https public URL every cookie the console sets is Secure.
func TestCookiesAreSecureBehindHTTPS(t *testing.T) {
	token, key, err := apikey.Generate("ops", apikey.ScopeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Deps{Redis: redistest.Start(t).Client(t), Keys: apikey.Set{key}, Log: slog.New(slog.DiscardHandler)},
		"https://mail.example")

	get := httptest.NewRecorder()
	c.ServeHTTP(get, httptest.NewRequest("GET", "/console/signin?lang=ar", nil))
	body, _ := io.ReadAll(get.Result().Body)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if get.Code != http.StatusOK || m == nil || !strings.Contains(string(body), `dir="rtl"`) {
		t.Fatalf("sign-in page: %d\n%s", get.Code, body)
	}
	cookies := get.Result().Cookies()

	req := httptest.NewRequest("POST", "/console/signin", strings.NewReader(url.Values{"csrf": {string(m[1])}, "token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	post := httptest.NewRecorder()
	c.ServeHTTP(post, req)
	if post.Code != http.StatusSeeOther {
		t.Fatalf("sign in: %d", post.Code)
	}
	cookies = append(cookies, post.Result().Cookies()...)
	names := map[string]bool{}
	for _, ck := range cookies {
		names[ck.Name] = true
		if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Errorf("cookie %s: %+v", ck.Name, ck)
		}
	}
	if !names[sessionCookie] || !names[signinCookie] || !names[langCookie] {
		t.Errorf("cookies set: %v", names)
	}
}
