package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/coalesce"
	"github.com/outbound-mail/outbound/internal/loopcert"
)

// The stored-SMTP floor is what any SMTP door pays that answers 250 only
// once the message is in Redis: a go-smtp server (implicit TLS, AUTH PLAIN
// accepting any login) that reads each message and writes it with one
// XADD, the writes of messages that arrive together sent in one pipeline
// (as Outbound's accept groups its scripts), before its 250. It checks,
// routes, limits and indexes nothing. It runs as its own process
// ("outbound-bench smtpfloor"), on the service's CPU with its Redis, so
// figure 7 can be read next to what SMTP alone allows and next to what
// storing before the 250 allows.

// runSMTPFloor serves on addr, storing into the Redis at redisAddr, and
// writes its certificate's PEM to certFile, until killed.
func runSMTPFloor(addr, certFile, redisAddr string) error {
	cert, err := loopcert.New("outbound-bench smtp floor")
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert.TLS}})
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	store := coalesce.New(128, func(ctx context.Context, msgs [][]byte) ([]struct{}, error) {
		pipe := rdb.Pipeline()
		for _, m := range msgs {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: "floor", Values: []any{"message", m}})
		}
		_, err := pipe.Exec(ctx)
		return nil, err // no output: err is every message's
	})
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &floorSession{store: store}, nil
	}))
	srv.Domain = "smtp-floor.localhost"
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	if err := os.WriteFile(certFile, cert.CertPEM, 0o600); err != nil {
		return err
	}
	return srv.Serve(ln)
}

type floorSession struct {
	store *coalesce.Group[[]byte, struct{}]
}

func (*floorSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (*floorSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(string, string, string) error { return nil }), nil
}
func (*floorSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*floorSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*floorSession) Reset()                               {}
func (*floorSession) Logout() error                        { return nil }

func (se *floorSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if _, err := se.store.Do(context.Background(), raw); err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: err.Error()}
	}
	return nil
}

// storedFloorSubmit runs the stored-SMTP floor and a Redis of its own on
// the service's CPU and submits n messages to it with figure 7's client;
// it returns the rate and the floor's and its Redis's CPU per message.
func (b *bench) storedFloorSubmit(n, sessions int) (rate float64, floorCPU, redisCPU time.Duration, err error) {
	redisProc, rdb, err := b.startRedis()
	if err != nil {
		return 0, 0, 0, err
	}
	defer redisProc.stop()
	defer rdb.Close()
	addr := "127.0.0.1:" + strconv.Itoa(freePort())
	certFile := filepath.Join(b.dir, "smtpfloor-"+strconv.Itoa(freePort())+".pem")
	self, _ := os.Executable()
	floor, err := b.start("smtpfloor", serviceCPU, os.Environ(), self, "smtpfloor", addr, certFile, rdb.Options().Addr)
	if err != nil {
		return 0, 0, 0, err
	}
	defer floor.stop()
	roots, err := waitCert(certFile)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("the SMTP floor: %w", err)
	}
	floor0, redis0 := floor.cpu(), redisProc.cpu()
	rate, err = submit(addr, roots, "acme", "password", n, sessions)
	if err != nil {
		return 0, 0, 0, err
	}
	stored, err := rdb.XLen(context.Background(), "floor").Result()
	if err != nil || stored != int64(n) {
		return 0, 0, 0, fmt.Errorf("the SMTP floor stored %d of %d messages (%v)", stored, n, err)
	}
	return rate, (floor.cpu() - floor0) / time.Duration(n), (redisProc.cpu() - redis0) / time.Duration(n), nil
}
