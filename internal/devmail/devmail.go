// Package devmail is the mail catcher of `outbound dev` and the sink of
// `outbound-bench`: a real SMTP server (go-smtp, implicit TLS with a
// certificate it makes itself, AUTH PLAIN accepting any login) that writes
// every message it receives as an .eml file a person can open in a mail
// program, or only counts it.
package devmail

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/loopcert"
)

// Server catches mail into a folder.
type Server struct {
	Dir     string // where .eml files go; "" counts and discards
	CertPEM []byte // the server's self-signed certificate, to trust it
	srv     *smtp.Server
	ln      net.Listener
	count   atomic.Int64
}

// Start listens on addr (a loopback address; port 0 picks a free one)
// and writes messages into dir, creating it; with dir "" it only counts
// them.
func Start(addr, dir string) (*Server, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("devmail: %w", err)
		}
	}
	cert, err := loopcert.New("outbound dev mail catcher")
	if err != nil {
		return nil, fmt.Errorf("devmail: %w", err)
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert.TLS}})
	if err != nil {
		return nil, fmt.Errorf("devmail: %w", err)
	}
	s := &Server{Dir: dir, CertPEM: cert.CertPEM, ln: ln}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = "outbound-dev.localhost"
	s.srv.ReadTimeout, s.srv.WriteTimeout = time.Minute, time.Minute
	s.srv.MaxMessageBytes = 64 << 20
	go s.srv.Serve(ln)
	return s, nil
}

// Port is the SMTP port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Count is how many messages were written.
func (s *Server) Count() int64 { return s.count.Load() }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

type session struct {
	s        *Server
	loggedIn bool
	from     string
	to       []string
}

func (se *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (se *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, _ string) error {
		se.loggedIn = username != ""
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if !se.loggedIn {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}

// Data writes the message with the envelope in X-Outbound-Dev-* headers at
// the top, since Bcc recipients appear nowhere else.
func (se *session) Data(r io.Reader) error {
	if se.s.Dir == "" {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		se.s.count.Add(1)
		return nil
	}
	n := se.s.count.Add(1)
	name := fmt.Sprintf("%s-%04d.eml", time.Now().UTC().Format("20060102T150405"), n)
	f, err := os.Create(filepath.Join(se.s.Dir, name))
	if err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot write the message"}
	}
	defer f.Close()
	fmt.Fprintf(f, "X-Outbound-Dev-Mail-From: <%s>\r\nX-Outbound-Dev-Rcpt-To: %s\r\n", se.from, "<"+strings.Join(se.to, ">, <")+">")
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	return f.Close()
}

func (se *session) Reset()        { se.from, se.to = "", nil }
func (se *session) Logout() error { return nil }
