package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/outbound-mail/outbound/api"
	"github.com/outbound-mail/outbound/internal/config"
	"github.com/outbound-mail/outbound/internal/metrics"
	"github.com/outbound-mail/outbound/internal/submission"
)

// submissionDoor is the SMTP submission server and the listeners New
// opened for it (so a bad address fails at once and :0 works).
type submissionDoor struct {
	srv       *submission.Server
	startTLS  net.Listener // nil when OUTBOUND_SUBMISSION_LISTEN is empty
	implicit  net.Listener // nil when OUTBOUND_SUBMISSIONS_LISTEN is empty
	listening []net.Listener
}

// newSubmission builds the door; New calls it when a listener is configured.
func newSubmission(cfg config.Config, a *App, m *metrics.Metrics) (*submissionDoor, error) {
	sc := cfg.Submission
	srv, err := submission.New(submission.Config{
		Hostname: cfg.HeloName, CertFile: sc.CertFile, KeyFile: sc.KeyFile,
		MaxConnections: sc.MaxConnections, MaxTenantConnections: sc.MaxTenantConnections, MaxRecipients: cfg.MaxRecipients, MaxMessageBytes: cfg.MaxMessageBytes,
		CommandTimeout: sc.CommandTimeout, DataTimeout: sc.DataTimeout,
	}, submission.Deps{Log: a.log, Keys: cfg.APIKeys, Acceptor: a.delivery, Metrics: m})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	d := &submissionDoor{srv: srv}
	for _, l := range []struct {
		addr, name string
		ln         *net.Listener
	}{{sc.Listen, "OUTBOUND_SUBMISSION_LISTEN", &d.startTLS}, {sc.ListenTLS, "OUTBOUND_SUBMISSIONS_LISTEN", &d.implicit}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("app: listen on %s (%s): %w", l.addr, l.name, err)
		}
		*l.ln = ln
		d.listening = append(d.listening, ln)
	}
	m.Gauge("outbound_submission_sessions_open", "SMTP submission connections open in this process.",
		func() float64 { return float64(srv.Open()) })
	return d, nil
}

// serve starts a goroutine per listener.
func (d *submissionDoor) serve(log *slog.Logger) {
	for _, ln := range d.listening {
		log.Info("smtp submission serving", "addr", ln.Addr().String(), "implicit_tls", ln == d.implicit)
	}
	if d.startTLS != nil {
		go d.srv.Serve(d.startTLS)
	}
	if d.implicit != nil {
		go d.srv.ServeTLS(d.implicit)
	}
}

// close releases the listeners of a door that was never served.
func (d *submissionDoor) close() {
	for _, ln := range d.listening {
		ln.Close()
	}
}

// ready is readiness over several checks: storage and, when configured,
// the submission listeners.
type ready []api.Pinger

func (r ready) Ping(ctx context.Context) error {
	for _, p := range r {
		if err := p.Ping(ctx); err != nil {
			return err
		}
	}
	return nil
}
