// Package netdelay puts distance on loopback: a TCP proxy that holds every
// chunk it forwards for a fixed time in each direction, so a benchmark or a
// test can see what a provider some milliseconds away does to a protocol
// that waits for replies.
package netdelay

import (
	"net"
	"time"
)

// Proxy forwards connections from its own loopback address to target.
type Proxy struct {
	ln     net.Listener
	target string
	oneWay time.Duration
}

// Start listens on a free loopback port and forwards every connection to
// target, delaying each chunk by oneWay on its way in either direction
// (chunks keep their order and do not wait for one another, as on a
// network). The proxy accepts the TCP connection itself, so the client's
// handshake does not pay the delay; everything after it does.
func Start(target string, oneWay time.Duration) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, oneWay: oneWay}
	go p.serve()
	return p, nil
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Close stops accepting; connections already made run until either side
// ends them.
func (p *Proxy) Close() error { return p.ln.Close() }

func (p *Proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		go forward(out, in, p.oneWay)
		go forward(in, out, p.oneWay)
	}
}

// forward copies src to dst, each chunk oneWay after it was read. When
// src ends, the end is passed on as the network would (a half close).
func forward(dst, src net.Conn, oneWay time.Duration) {
	type chunk struct {
		due  time.Time
		data []byte
	}
	chunks := make(chan chunk, 1024)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{time.Now().Add(oneWay), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}
