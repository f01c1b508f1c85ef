package main

import (
	"encoding/json"
	"net/http"
	"os"

	"github.com/outbound-mail/outbound/internal/devmail"
)

// The sink is the mail catcher of `outbound dev` in counting mode (real
// go-smtp, implicit TLS, AUTH PLAIN accepting any login). It runs as its
// own process ("outbound-bench sink") so that its CPU time is not the load
// generator's.

type sinkCounts struct {
	Messages int64 `json:"messages"`
}

// runSink serves SMTP on smtpAddr and the count on httpAddr, writing the
// certificate's PEM to certFile, until killed.
func runSink(smtpAddr, httpAddr, certFile string) error {
	s, err := devmail.Start(smtpAddr, "")
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, s.CertPEM, 0o600); err != nil {
		return err
	}
	http.HandleFunc("/counts", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(sinkCounts{Messages: s.Count()})
	})
	return http.ListenAndServe(httpAddr, nil)
}
