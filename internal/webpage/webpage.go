// Package webpage is what Outbound's server-rendered pages (the connect
// page and the console) answer alike: the headers that keep a page to
// itself, and the status an answer had, for the request's log line.
package webpage

import "net/http"

// Guard sets the headers every page answers with: its
// Content-Security-Policy; a referrer of the origin alone, so a link out
// never carries a path (the connect page's path is its link's secret); no
// content sniffing; and no caching, since a page shows a tenant's or an
// operator's data.
func Guard(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}

// Recorder is a ResponseWriter that remembers the status it wrote.
type Recorder struct {
	http.ResponseWriter
	Status int
}

// Record wraps w; an answer that never calls WriteHeader is a 200.
func Record(w http.ResponseWriter) *Recorder {
	return &Recorder{ResponseWriter: w, Status: http.StatusOK}
}

func (r *Recorder) WriteHeader(code int) {
	r.Status = code
	r.ResponseWriter.WriteHeader(code)
}
