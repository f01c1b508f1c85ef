package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// TestSlowClientsCannotExhaustTheService opens many connections that
// dribble a request header and never finish it (slow-loris): the service
// keeps answering others, and closes the slow ones after its header
// timeout.
func TestSlowClientsCannotExhaustTheService(t *testing.T) {
	redis := redistest.Start(t)
	env, admin, send := serviceEnv(t, redis.URL(), "OUTBOUND_HTTP_READ_HEADER_TIMEOUT=500ms")
	svc := startService(t, env, admin, send)
	addr := strings.TrimPrefix(svc.url, "http://")

	var slow []net.Conn
	for range 300 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Slow: "))
		slow = append(slow, c)
	}
	start := time.Now()
	res, err := http.Get(svc.url + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz with 300 slow clients: %v %v", res, err)
	}
	res.Body.Close()
	t.Logf("healthz answered in %v beside 300 slow connections", time.Since(start))

	// Every slow connection is closed by the server within a few header
	// timeouts.
	deadline := time.Now().Add(5 * time.Second)
	closed := 0
	for _, c := range slow {
		c.SetReadDeadline(deadline)
		if _, err := io.ReadAll(c); err == nil || !isTimeout(err) {
			closed++
		}
	}
	if closed != len(slow) {
		t.Fatalf("%d of %d slow connections still open after 5s", len(slow)-closed, len(slow))
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
