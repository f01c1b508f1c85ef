package delivery

import (
	"sync"
	"time"
)

// CodeCircuitOpen is the profile error of an account whose circuit is open:
// its server failed to answer several times in a row, and its messages
// wait without new connections until the error's RetryAt.
const CodeCircuitOpen = "circuit_open"

// An account's circuit opens after circuitThreshold session set-ups in a row
// failed before the login (connect, TLS or greeting), for circuitBase; each
// failed probe after it opened doubles that, up to circuitMax. A server that
// does not answer costs the connect timeout per dial, so without a circuit
// every message for it would spend one more.
const (
	circuitThreshold = 3
	circuitBase      = 30 * time.Second
	circuitMax       = 30 * time.Minute
)

// circuits counts each account's failed set-ups and remembers when its
// circuit is open. For a tenant's account the open circuit is also written
// to the profile (last_error), which every replica reads and which a PUT or
// a successful verify clears; for the default relay this memory is all.
type circuits struct {
	mu sync.Mutex
	m  map[string]*circuit
}

type circuit struct {
	failures  int
	openUntil time.Time
	openFor   time.Duration // how long it last opened for; 0 until it opens
}

func newCircuits() *circuits { return &circuits{m: map[string]*circuit{}} }

// failed records a failed set-up of the account. A failure past the
// threshold, or the first after the circuit was open (its probe), opens it:
// it returns until when. lastOpenFor seeds a circuit another replica
// opened (read from the profile), so its probe's failure doubles it too.
func (cs *circuits) failed(key string, now time.Time, lastOpenFor time.Duration) (until time.Time, opened bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.m[key]
	if c == nil {
		c = &circuit{}
		cs.m[key] = c
	}
	if c.openFor == 0 {
		c.openFor = lastOpenFor
	}
	c.failures++
	switch {
	case c.openFor > 0:
		c.openFor = min(2*c.openFor, circuitMax)
	case c.failures >= circuitThreshold:
		c.openFor = circuitBase
	default:
		return time.Time{}, false
	}
	c.openUntil = now.Add(c.openFor)
	return c.openUntil, true
}

// any reports whether any account has failures counted.
func (cs *circuits) any() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.m) > 0
}

// succeeded closes the account's circuit.
func (cs *circuits) succeeded(key string) {
	cs.mu.Lock()
	delete(cs.m, key)
	cs.mu.Unlock()
}

// forget drops the circuits whose keys match: a tenant's, when its
// profile changed.
func (cs *circuits) forget(match func(key string) bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for key := range cs.m {
		if match(key) {
			delete(cs.m, key)
		}
	}
}

// open reports whether the account's circuit is open at now, and until when.
func (cs *circuits) open(key string, now time.Time) (time.Time, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c := cs.m[key]; c != nil && c.openUntil.After(now) {
		return c.openUntil, true
	}
	return time.Time{}, false
}

// count is how many circuits are open at now.
func (cs *circuits) count(now time.Time) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	n := 0
	for _, c := range cs.m {
		if c.openUntil.After(now) {
			n++
		}
	}
	return n
}
