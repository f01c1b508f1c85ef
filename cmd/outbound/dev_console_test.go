package main

import (
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"
)

// `outbound dev` prints a link that opens the console signed in as the
// dev admin key, once: the second use signs in no one.
func TestDevPrintsConsoleLink(t *testing.T) {
	lines, stderr := startDev(t, t.TempDir())
	found := make(chan string, 1)
	go func() {
		for l := range lines {
			if _, link, ok := strings.Cut(l, "Console (signed in, one use): "); ok {
				found <- link
			}
		}
		close(found)
	}()
	var link string
	select {
	case link = <-found:
	case <-time.After(20 * time.Second):
	}
	if !strings.Contains(link, "/console/signin?once=") {
		t.Fatalf("no console link printed:\n%s", stderr.String())
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/" {
		t.Fatalf("the link: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	base := strings.Split(link, "/console/")[0]
	if res, err = c.Get(base + "/console/"); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the console after the link: %d", res.StatusCode)
	}

	// Used once: a second browser gets the sign-in form.
	res, err = http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, ck := range res.Cookies() {
		if ck.Name == "outbound_console" {
			t.Errorf("the link signed in twice")
		}
	}
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/console/signin" {
		t.Errorf("the used link: %d %s", res.StatusCode, res.Request.URL)
	}
}
