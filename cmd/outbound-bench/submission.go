package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/loopcert"
)

// Figure 7: mail that enters by SMTP submission. The same client (go-smtp,
// implicit TLS, AUTH PLAIN, sessions each sending its share of the
// messages over one connection, MAIL/RCPT/DATA without RSET) sends to
// Outbound's submission listener and to a bare go-smtp server that
// discards (the sink, run on the service's CPU for this figure): the
// second is what SMTP alone allows here. Then to the stored-SMTP floor
// (smtpfloor.go), what a door allows that stores before its 250; and the
// same over Outbound's whole path, from the client's first MAIL to the
// last message counted at the sink.

// submissionMail is a 1 KB message as a mailer writes it, from the
// account address, with its own Message-ID (so each is a new key in the
// replay window, as a real mailer's messages are).
func submissionMail(i int) []byte {
	return []byte("From: \"Acme\" <acme@bench.example>\r\nTo: <client" + strconv.Itoa(i%100) + "@example.com>\r\n" +
		"Subject: bench " + strconv.Itoa(i) + "\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n" +
		"Message-ID: <bench-" + strconv.Itoa(i) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@bench.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
		wrapped1KB)
}

// wrapped1KB is body1KB in lines of 64 octets, as a mailer writes text
// (RFC 5322 allows at most 998).
var wrapped1KB = func() string {
	var out string
	for i := 0; i < len(body1KB); i += 64 {
		out += body1KB[i:min(i+64, len(body1KB))] + "\r\n"
	}
	return out
}()

// submit sends n messages to addr over sessions connections (implicit
// TLS, logged in as user/password) and returns the rate.
func submit(addr string, roots *x509.CertPool, user, password string, n, sessions int) (float64, error) {
	var next atomic.Int64
	errs := make(chan error, sessions)
	start := time.Now()
	var wg sync.WaitGroup
	for range sessions {
		wg.Go(func() {
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
			if err != nil {
				errs <- err
				return
			}
			c := smtp.NewClient(conn)
			defer c.Close()
			if err := c.Auth(sasl.NewPlainClient("", user, password)); err != nil {
				errs <- fmt.Errorf("AUTH: %w", err)
				return
			}
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					c.Quit()
					return
				}
				if err := sendOne(c, i); err != nil {
					errs <- fmt.Errorf("message %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	rate := float64(n) / time.Since(start).Seconds()
	close(errs)
	return rate, <-errs
}

func sendOne(c *smtp.Client, i int) error {
	if err := c.Mail("acme@bench.example", nil); err != nil {
		return err
	}
	if err := c.Rcpt("client"+strconv.Itoa(i%100)+"@example.com", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(submissionMail(i)); err != nil {
		return err
	}
	return w.Close()
}

// runSubmission measures figure 7 with sessions concurrent SMTP sessions.
func (b *bench) runSubmission(n, sessions int) error {
	p := func(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }
	certFile, keyFile, roots, err := selfSignedFiles(b.dir)
	if err != nil {
		return err
	}
	sinkRoots := x509.NewCertPool()
	sinkRoots.AppendCertsFromPEM(b.caPEM)
	var accepts, bares, ratios, e2es, e2eRatios, svcCPU, redisCPU, bareCPUs sample
	var storeds, storedRatios, storedFloorRatios, storedCPUs, storedRedisCPUs sample
	for i := range b.repeat {
		// Accepting alone: no workers, so nothing competes with it.
		profile := ""
		if i == 0 && b.profile != "" {
			profile = b.profile + ".submission"
		}
		accept, svc, redis, err := b.submissionRun(n, sessions, 0, certFile, keyFile, roots, profile)
		if err != nil {
			return fmt.Errorf("submission accept: %w", err)
		}
		bare, bareCPU, err := b.bareSubmit(n, sessions, sinkRoots)
		if err != nil {
			return fmt.Errorf("bare go-smtp: %w", err)
		}
		stored, storedCPU, storedRedis, err := b.storedFloorSubmit(n, sessions)
		if err != nil {
			return fmt.Errorf("stored-SMTP floor: %w", err)
		}
		e2e, _, _, err := b.submissionRun(n, sessions, 32, certFile, keyFile, roots, "")
		if err != nil {
			return fmt.Errorf("submission end to end: %w", err)
		}
		accepts, bares, ratios = append(accepts, accept), append(bares, bare), append(ratios, accept/bare)
		e2es, e2eRatios = append(e2es, e2e), append(e2eRatios, e2e/bare)
		svcCPU, redisCPU = append(svcCPU, svc.Seconds()), append(redisCPU, redis.Seconds())
		bareCPUs = append(bareCPUs, bareCPU.Seconds())
		storeds, storedRatios = append(storeds, stored), append(storedRatios, accept/stored)
		storedFloorRatios = append(storedFloorRatios, stored/bare)
		storedCPUs, storedRedisCPUs = append(storedCPUs, storedCPU.Seconds()), append(storedRedisCPUs, storedRedis.Seconds())
	}
	p("7. SMTP submission, %d sessions over implicit TLS: accepted %s | bare go-smtp server that discards %s | ratio %s\n",
		sessions, accepts.rate(), bares.rate(), ratios.ratio())
	p("   CPU per accepted message: service %s + Redis %s | bare server %s\n", svcCPU.micros(), redisCPU.micros(), bareCPUs.micros())
	p("7'. stored-SMTP floor (go-smtp, one XADD per message before the 250, nothing checked) %s, %s of the bare server | accepted is %s of it (target 0.50)\n",
		storeds.rate(), storedFloorRatios.ratio(), storedRatios.ratio())
	p("   CPU per stored message: floor %s + Redis %s\n", storedCPUs.micros(), storedRedisCPUs.micros())
	p("7b. end to end, in by SMTP and out to the sink: %s | ratio to the bare server %s\n", e2es.rate(), e2eRatios.ratio())
	return nil
}

// submissionRun starts Redis and `outbound serve` with the submission
// listeners and workers, gives tenant acme its account on the sink, and
// submits n messages. With workers it times the run to the last message
// counted at the sink; without, to the last 250. It returns the rate and
// the service's and Redis's CPU per message.
func (b *bench) submissionRun(n, sessions, workers int, certFile, keyFile string, roots *x509.CertPool, profile string) (float64, time.Duration, time.Duration, error) {
	redisProc, rdb, err := b.startRedis()
	if err != nil {
		return 0, 0, 0, err
	}
	defer redisProc.stop()
	defer rdb.Close()
	addr := "127.0.0.1:" + strconv.Itoa(freePort())
	debugAddr, extra := debugListen(profile)
	svc, url, err := b.startOutbound(rdb.Options().Addr, workers, append(extra,
		"OUTBOUND_SUBMISSIONS_LISTEN="+addr, "OUTBOUND_SUBMISSION_TLS_CERT="+certFile, "OUTBOUND_SUBMISSION_TLS_KEY="+keyFile,
		// Every session logs in as the one tenant: the per-tenant cap (a
		// quarter of the listener's connections by default) must let them.
		"OUTBOUND_SUBMISSION_MAX_CONNECTIONS="+strconv.Itoa(max(100, sessions)),
		"OUTBOUND_SUBMISSION_MAX_TENANT_CONNECTIONS="+strconv.Itoa(sessions))...)
	if err != nil {
		return 0, 0, 0, err
	}
	defer svc.stop()
	if err := b.putProfiles(url, []string{"acme"}, true); err != nil {
		return 0, 0, 0, err
	}
	base := b.sinkCounts().Messages
	svc0, redis0 := svc.cpu(), redisProc.cpu()
	start := time.Now()
	var rate float64
	err = whileProfiling(debugAddr, profile, 3, func() (err error) {
		rate, err = submit(addr, roots, "acme", b.sendToken, n, sessions)
		return err
	})
	if err != nil {
		return 0, 0, 0, err
	}
	svcPer, redisPer := (svc.cpu()-svc0)/time.Duration(n), (redisProc.cpu()-redis0)/time.Duration(n)
	if workers > 0 {
		end, err := b.waitSink(base+int64(n), 5*time.Minute)
		if err != nil {
			return 0, 0, 0, err
		}
		rate = float64(n) / end.Sub(start).Seconds()
	}
	return rate, svcPer, redisPer, nil
}

// bareSubmit runs a second sink on the service's CPU and submits n
// messages to it with the same client; it returns the rate and the
// sink's CPU per message.
func (b *bench) bareSubmit(n, sessions int, roots *x509.CertPool) (float64, time.Duration, error) {
	smtpAddr, httpAddr := "127.0.0.1:"+strconv.Itoa(freePort()), "127.0.0.1:"+strconv.Itoa(freePort())
	certFile := filepath.Join(b.dir, "bare-"+strconv.Itoa(freePort())+".pem")
	self, _ := os.Executable()
	sink, err := b.start("baresink", serviceCPU, os.Environ(), self, "sink", smtpAddr, httpAddr, certFile)
	if err != nil {
		return 0, 0, err
	}
	defer sink.stop()
	own, err := waitCert(certFile)
	if err != nil {
		return 0, 0, fmt.Errorf("the bare sink: %w", err)
	}
	cpu0 := sink.cpu()
	rate, err := submit(smtpAddr, own, "acme@bench.example", "password", n, sessions)
	return rate, (sink.cpu() - cpu0) / time.Duration(n), err
}

// selfSignedFiles writes a certificate for 127.0.0.1 and its key for the
// submission listener, and returns the pool that trusts it.
func selfSignedFiles(dir string) (certFile, keyFile string, roots *x509.CertPool, err error) {
	cert, err := loopcert.New("outbound-bench")
	if err != nil {
		return "", "", nil, err
	}
	certFile, keyFile, err = cert.WriteFiles(dir, "submission-*.pem")
	return certFile, keyFile, cert.Pool(), err
}

// waitCert waits for a server process to write its certificate to
// certFile, then a moment for it to listen, and returns the pool that
// trusts it.
func waitCert(certFile string) (*x509.CertPool, error) {
	for range 100 {
		if pemBytes, err := os.ReadFile(certFile); err == nil && len(pemBytes) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pemBytes) {
				return nil, fmt.Errorf("%s holds no certificate", certFile)
			}
			time.Sleep(50 * time.Millisecond)
			return pool, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("no certificate written to %s", certFile)
}
