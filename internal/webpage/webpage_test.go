package webpage

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A page's answer as an HTTP client reads it: the guard's
// headers on every status, and the status the recorder saw is the one
// sent.
func TestGuardAndRecord(t *testing.T) {
	seen := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Guard(w.Header(), "default-src 'self'")
		rec := Record(w)
		if r.URL.Path == "/missing" {
			rec.WriteHeader(http.StatusNotFound)
		}
		_, _ = rec.Write([]byte("page"))
		seen <- rec.Status
	}))
	defer srv.Close()
	for path, want := range map[string]int{"/": http.StatusOK, "/missing": http.StatusNotFound} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if recorded := <-seen; res.StatusCode != want || recorded != want {
			t.Errorf("%s: sent %d, recorded %d, want %d", path, res.StatusCode, recorded, want)
		}
		for k, v := range map[string]string{"Content-Security-Policy": "default-src 'self'", "Referrer-Policy": "same-origin",
			"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
			if got := res.Header.Get(k); got != v {
				t.Errorf("%s: %s %q, want %q", path, k, got, v)
			}
		}
	}
}
