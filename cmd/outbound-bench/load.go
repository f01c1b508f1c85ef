package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/redis/go-redis/v9"
)

// body1KB is the message text every run sends: 1 KB of plain text.
var body1KB = strings.Repeat("Outbound benchmark message body. ", 32)[:1024]

func message(tenant string, i int) []byte {
	b, _ := json.Marshal(map[string]any{
		"tenant_id": tenant, "to": []map[string]string{{"email": "client" + strconv.Itoa(i%100) + "@example.com"}},
		"subject": "bench " + strconv.Itoa(i), "text": body1KB,
	})
	return b
}

// latencies summarises request durations.
type latencies []time.Duration

func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// post sends n messages at concurrency c, tenants chosen round robin, and
// returns the rate and latencies.
func (b *bench) post(url string, n, c int, tenants []string) (float64, latencies, error) {
	var next atomic.Int64
	lat := make(latencies, n)
	var firstErr error
	var mu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				req, _ := http.NewRequest("POST", url+"/v1/messages", bytes.NewReader(message(tenants[i%len(tenants)], i)))
				req.Header.Set("Authorization", "Bearer "+b.sendToken)
				req.Header.Set("Content-Type", "application/json")
				res, err := b.http.Do(req)
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusAccepted {
						err = fmt.Errorf("POST answered %d", res.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), lat, firstErr
}

// postBatches sends n messages through POST /v1/messages/batch, size to
// a request and c requests at a time, and returns the rate in messages
// per second.
func (b *bench) postBatches(url string, n, size, c int, tenant string) (float64, error) {
	var next atomic.Int64
	errs := make(chan error, c)
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for {
				first := int(next.Add(int64(size))) - size
				if first >= n {
					return
				}
				if err := b.postBatch(url, tenant, first, min(n, first+size)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return float64(n) / time.Since(start).Seconds(), <-errs
}

// postBatch posts messages first..end-1 in one request and checks each
// was queued.
func (b *bench) postBatch(url, tenant string, first, end int) error {
	messages := make([]json.RawMessage, 0, end-first)
	for i := first; i < end; i++ {
		messages = append(messages, message(tenant, i))
	}
	body, _ := json.Marshal(map[string]any{"messages": messages})
	req, _ := http.NewRequest("POST", url+"/v1/messages/batch", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+b.sendToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var out struct{ Results []struct{ Status int } }
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		return fmt.Errorf("batch answered %d (%v)", res.StatusCode, err)
	}
	for _, r := range out.Results {
		if r.Status != http.StatusAccepted {
			return fmt.Errorf("a batched message answered %d", r.Status)
		}
	}
	return nil
}

// xadd is the floor of the accept path: n bare XADDs of the same payload
// at concurrency c to the same Redis.
func xadd(rdb *redis.Client, n, c int) float64 {
	payload := message("acme", 0)
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: "bench:xadd", Values: []any{"payload", payload}})
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// composed is a message of the size Outbound composes for body1KB.
var composed = []byte("From: \"Acme\" <acme@bench.example>\r\nTo: <client@example.com>\r\nSubject: bench\r\n" +
	"Date: Sat, 28 Nov 2026 12:00:00 +0000\r\nMessage-ID: <x@bench.example>\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + body1KB + "\r\n")

func (b *bench) tlsConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b.caPEM)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

func (b *bench) login(user string) (*smtp.Client, error) {
	conn, err := tls.Dial("tcp", b.smtpAddr, b.tlsConfig())
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	if err := c.Auth(sasl.NewPlainClient("", user, "password")); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// raw feeds the sink directly: conns reused, authenticated TLS sessions,
// no HTTP, no Redis. It returns the rate and this process's CPU time per
// message.
func (b *bench) raw(n, conns int) (float64, time.Duration, error) {
	var next atomic.Int64
	errs := make(chan error, conns)
	cpu0 := selfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			c, err := b.login("acme@bench.example")
			if err != nil {
				errs <- err
				return
			}
			defer c.Quit()
			for next.Add(1) <= int64(n) {
				if err := c.SendMail("acme@bench.example", []string{"client@example.com"}, bytes.NewReader(composed)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	rate := float64(n) / time.Since(start).Seconds()
	close(errs)
	return rate, (selfCPU() - cpu0) / time.Duration(n), <-errs
}

// naive sends each message on a new TLS connection with its own login, as
// many applications do.
func (b *bench) naive(n, c int) (float64, error) {
	var next atomic.Int64
	errs := make(chan error, c)
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				cl, err := b.login("acme@bench.example")
				if err == nil {
					err = cl.SendMail("acme@bench.example", []string{"client@example.com"}, bytes.NewReader(composed))
					cl.Quit()
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return float64(n) / time.Since(start).Seconds(), <-errs
}

func (b *bench) sinkCounts() sinkCounts {
	var c sinkCounts
	res, err := http.Get("http://" + b.sinkHTTP + "/counts")
	if err != nil {
		return c
	}
	defer res.Body.Close()
	json.NewDecoder(res.Body).Decode(&c)
	return c
}

// waitSink waits until the sink has counted want messages and says when.
func (b *bench) waitSink(want int64, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b.sinkCounts().Messages >= want {
			return time.Now(), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("sink has %d of %d messages after %v", b.sinkCounts().Messages, want, timeout)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// putProfiles gives each tenant a profile on the sink; shared gives them
// all one account, else each its own login.
func (b *bench) putProfiles(url string, tenants []string, shared bool) error {
	var next atomic.Int64
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	_, portText, _ := net.SplitHostPort(b.smtpAddr)
	port, _ := strconv.Atoi(portText)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tenants) {
					return
				}
				user := "acme@bench.example"
				if !shared {
					user = tenants[i] + "@bench.example"
				}
				body, _ := json.Marshal(map[string]any{"email": user, "password": "password", "host": "127.0.0.1",
					"port": port, "security": "tls"})
				req, _ := http.NewRequest("PUT", url+"/v1/tenants/"+tenants[i]+"/smtp", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+b.adminToken)
				req.Header.Set("Content-Type", "application/json")
				res, err := b.http.Do(req)
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode >= 300 {
						err = fmt.Errorf("PUT profile: %d", res.StatusCode)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
