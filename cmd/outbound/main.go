// Command outbound is the Outbound service: an HTTP API that accepts mail
// for a SaaS's tenants and workers that deliver it through each tenant's
// own SMTP account or the platform's default relay.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// gcPercent is the garbage collector's target unless GOGC is set. The
// service's live heap is small (a few MiB between messages), so at Go's
// default of 100 it collects very often; 300 trades a few MiB of RSS for
// less CPU per message (docs/measurements.md, "The garbage collector's
// target").
const gcPercent = 300

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "outbound:", err)
		os.Exit(1)
	}
}

const usage = `usage: outbound <command>

commands:
  serve                 run the API and delivery workers (configured by OUTBOUND_* variables)
  dev                   try it: embedded Redis and a mail catcher writing .eml files; nothing is kept
  apikey NAME SCOPE     print a new API token and its OUTBOUND_API_KEYS entry (SCOPE: send, admin, send@TENANT or admin@TENANT)
  keygen                print a new OUTBOUND_SECRET_KEY
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, getenv, stderr, nil)
	case "dev":
		return dev(ctx, getenv, stdout, stderr)
	case "apikey":
		return printAPIKey(args[1:], stdout)
	case "keygen":
		return printSecretKey(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
