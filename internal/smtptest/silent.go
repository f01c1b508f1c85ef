package smtptest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Silent is a host that takes TCP connections and never says a word, as a
// black-holed or hung mail server does: clients wait for a greeting that
// never comes.
type Silent struct {
	ln       net.Listener
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
}

// StartSilent listens on 127.0.0.1:0 until the test ends.
func StartSilent(tb testing.TB) *Silent {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Silent{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

// Port is the port it listens on.
func (s *Silent) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Connections is how many connections it took.
func (s *Silent) Connections() int { return int(s.accepted.Load()) }
