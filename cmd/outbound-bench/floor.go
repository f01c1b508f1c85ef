package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// The HTTP floor is what any Go HTTP service pays before doing any work:
// a net/http server on the service's CPU that reads each POST body, decodes
// its JSON and answers 202 with a small JSON body, storing nothing. It runs
// as its own process ("outbound-bench httpfloor"), so the accept rate can
// be read next to what HTTP alone allows on the same core.

func runHTTPFloor(addr string) error {
	return http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"id":"floor","status":"queued"}`))
	}))
}

// httpFloor measures the HTTP floor at concurrency c for n requests.
func (b *bench) httpFloor(n, c int) (float64, error) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort())
	self, _ := os.Executable()
	p, err := b.start("httpfloor", serviceCPU, os.Environ(), self, "httpfloor", addr)
	if err != nil {
		return 0, err
	}
	defer p.stop()
	url := "http://" + addr
	for range 100 {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	rate, _, err := b.post(url, n, c, []string{"acme"})
	return rate, err
}
