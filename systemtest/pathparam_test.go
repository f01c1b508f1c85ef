package systemtest

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// rawDo sends a request whose path goes on the wire exactly as given,
// percent-escapes and all, as curl sends what it is told.
func rawDo(t *testing.T, h *harness, method, rawPath, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, h.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = rawPath // written verbatim in the request line
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out)
}

// TestPercentEncodedPathParams names tenants, addresses and messages in
// the path percent-encoded, as clients encode them (url.PathEscape,
// encodeURIComponent, curl --data-urlencode): each means what it decodes
// to.
func TestPercentEncodedPathParams(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	s.putProfile(t, nil)
	supp := "/v1/tenants/acme/suppressions/"
	encoded := url.QueryEscape("Ann+news@example.com") // Ann%2Bnews%40example.com, as encodeURIComponent sends it
	if status, body := rawDo(t, s.harness, "PUT", supp+encoded, s.adminToken, `{"reason":"asked"}`); status != http.StatusOK {
		t.Fatalf("PUT %s: %d %s", encoded, status, body)
	}
	if status, body := rawDo(t, s.harness, "GET", supp+"ann%2Bnews%40example.com", s.adminToken, ""); status != http.StatusOK ||
		!strings.Contains(body, `"email":"ann+news@example.com"`) {
		t.Errorf("GET encoded: %d %s", status, body)
	}
	if status, body := rawDo(t, s.harness, "GET", supp+"ann+news@example.com", s.adminToken, ""); status != http.StatusOK {
		t.Errorf("GET plain: %d %s", status, body)
	}
	if status, body := rawDo(t, s.harness, "GET", "/v1/tenants/%61cme/suppressions", s.adminToken, ""); status != http.StatusOK ||
		!strings.Contains(body, "ann+news@example.com") {
		t.Errorf("encoded tenant: %d %s", status, body)
	}
	if status, body := rawDo(t, s.harness, "DELETE", supp+"ann%2bnews%40EXAMPLE.com", s.adminToken, ""); status != http.StatusNoContent {
		t.Errorf("DELETE encoded: %d %s", status, body)
	}
	// An escaped slash stays inside its segment: a/b@example.com is an
	// address ("/" is atext, RFC 5322 section 3.2.3), just not a listed one.
	if status, body := rawDo(t, s.harness, "GET", supp+"a%2Fb%40example.com", s.adminToken, ""); status != http.StatusNotFound ||
		!strings.Contains(body, "suppression list") {
		t.Errorf("escaped slash: %d %s", status, body)
	}
	if status, body := rawDo(t, s.harness, "GET", supp+"not%20an%20address", s.adminToken, ""); status != http.StatusUnprocessableEntity ||
		!strings.Contains(body, `"invalid_email"`) {
		t.Errorf("not an address: %d %s", status, body)
	}

	id := s.accept(t, invoice())
	escaped := "%" + strings.ToUpper(fmtHex(id[0])) + id[1:]
	if status, body := rawDo(t, s.harness, "GET", "/v1/messages/"+escaped, s.adminToken, ""); status != http.StatusOK ||
		!strings.Contains(body, id) {
		t.Errorf("encoded message id %s: %d %s", escaped, status, body)
	}
}

func fmtHex(c byte) string {
	const hex = "0123456789abcdef"
	return string([]byte{hex[c>>4], hex[c&0xf]})
}
