package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/outbound-mail/outbound/internal/app"
	"github.com/outbound-mail/outbound/internal/config"
)

// serve runs the service until ctx ends, then shuts down in reverse order
// of start (see app.App.Run). onListen, when not nil, is told the app, the
// HTTP address and the SMTP submission (STARTTLS) one, nil when off, once
// they accept connections. opts are dev's (serve passes none).
func serve(ctx context.Context, getenv func(string) string, logOut io.Writer, onListen func(a *app.App, http, submission net.Addr),
	opts ...app.Option) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))

	a, err := app.New(cfg, log, opts...)
	if err != nil {
		return err
	}
	// Listen before serving: a bad address fails at once, and :0 works.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		a.Close()
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if onListen != nil {
		submission, _ := a.SubmissionAddrs()
		onListen(a, ln.Addr(), submission)
	}
	return a.Run(ctx, ln)
}
