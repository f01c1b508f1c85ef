package egress

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTPClient(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	}))
	defer srv.Close()

	t.Run("loopback refused by default", func(t *testing.T) {
		g, log := newGuard(false, nil)
		_, err := g.HTTPClient(nil, 2*time.Second).Get(srv.URL)
		if !errors.Is(err, ErrDenied) {
			t.Fatalf("err = %v, want ErrDenied", err)
		}
		if hits.Load() != 0 || len(log.get()) != 0 {
			t.Fatalf("server hit %d times, dialled %v", hits.Load(), log.get())
		}
	})

	t.Run("redirect not followed", func(t *testing.T) {
		g, _ := newGuard(true, nil)
		resp, err := g.HTTPClient(nil, 2*time.Second).Get(srv.URL + "/redirect")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || hits.Load() != 1 {
			t.Errorf("status %d after %d requests, want 302 after 1", resp.StatusCode, hits.Load())
		}
	})
}
