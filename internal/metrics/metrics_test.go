package metrics

import "testing"

// The HTTP labels take values from closed sets whatever a request holds.
func TestHTTPLabelsAreClosedSets(t *testing.T) {
	for method, want := range map[string]string{
		"GET": "GET", "POST": "POST", "PATCH": "PATCH", "OPTIONS": "OPTIONS",
		"get": "other", "FOOBAR": "other", "": "other", "PROPFIND": "other",
	} {
		if got := methodLabel(method); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", method, got, want)
		}
	}
	for status, want := range map[int]string{200: "200", 404: "404", 599: "599", 0: "other", 99: "other", 600: "other", 1000000: "other"} {
		if got := statusLabel(status); got != want {
			t.Errorf("statusLabel(%d) = %q, want %q", status, got, want)
		}
	}
}
