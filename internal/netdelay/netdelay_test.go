package netdelay

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// An echo through the proxy takes at least the round trip it adds, and
// the bytes arrive whole and in order.
func TestProxyDelaysBothWays(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			c.Write([]byte(line))
		}
	}()
	const oneWay = 20 * time.Millisecond
	p, err := Start(ln.Addr().String(), oneWay)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, msg := range []string{"first\n", "second\n"} {
		start := time.Now()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if rtt := time.Since(start); got != msg || rtt < 2*oneWay {
			t.Fatalf("echo %q after %v, want %q after at least %v", got, rtt, msg, 2*oneWay)
		}
	}
}
