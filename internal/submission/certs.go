package submission

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves the certificate in two PEM files and reads them
// again when either's modification time changes, so a renewal (certbot,
// cert-manager writing a Secret's files) takes effect without a restart.
// The times are looked at no more than once per interval, on a handshake;
// a pair that fails to load keeps the previous certificate in service.
type certReloader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *slog.Logger
	now               func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	certMod   time.Time
	keyMod    time.Time
	checkedAt time.Time
}

func newCertReloader(certFile, keyFile string, interval time.Duration, log *slog.Logger) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("submission: a certificate and key file are required")
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, interval: interval, log: log, now: time.Now}
	if err := r.load(); err != nil {
		return nil, err
	}
	r.checkedAt = r.now()
	return r, nil
}

func modTime(path string) (time.Time, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// load reads the pair; the caller holds mu (or owns r alone).
func (r *certReloader) load() error {
	certMod, err := modTime(r.certFile)
	if err != nil {
		return fmt.Errorf("submission: certificate: %w", err)
	}
	keyMod, err := modTime(r.keyFile)
	if err != nil {
		return fmt.Errorf("submission: key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("submission: certificate: %w", err)
	}
	r.cert, r.certMod, r.keyMod = &cert, certMod, keyMod
	return nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checkedAt) >= r.interval {
		r.checkedAt = now
		r.reloadIfChanged()
	}
	return r.cert, nil
}

func (r *certReloader) reloadIfChanged() {
	certMod, err1 := modTime(r.certFile)
	keyMod, err2 := modTime(r.keyFile)
	if err1 != nil || err2 != nil {
		r.log.Warn("submission: certificate files unreadable; keeping the loaded certificate",
			"cert_file", r.certFile, "key_file", r.keyFile)
		return
	}
	if certMod.Equal(r.certMod) && keyMod.Equal(r.keyMod) {
		return
	}
	if err := r.load(); err != nil {
		// Often the certificate was written and the key not yet: the
		// next check, with a newer time, tries again.
		r.log.Warn("submission: new certificate does not load; keeping the previous one", "error", err)
		return
	}
	r.log.Info("submission: certificate reloaded", "cert_file", r.certFile, "not_after", r.cert.Leaf.NotAfter)
}
