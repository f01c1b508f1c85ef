// Package postfixtest runs Debian's Postfix for a test, as a tenant's real
// submission server: implicit TLS (port 465 style) and STARTTLS (port 587
// style) on free loopback ports, AUTH PLAIN and LOGIN through Cyrus SASL
// against its own sasldb, a recipient access map that refuses chosen
// addresses, and one Maildir that receives every recipient's copy.
//
// Everything the instance writes (configuration, queue, mail, log) lives
// in one temporary directory; it is started with `postfix -c DIR start`
// and stopped when the test ends, and touches no system Postfix.
package postfixtest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// Options configure a Server.
type Options struct {
	// Users maps SASL username to password. A name with an @ is stored
	// as user and realm, which is how Cyrus SASL splits what a client
	// sends.
	Users map[string]string
	// Refuse maps a recipient address to the reply RCPT TO gets, such as
	// "550 5.1.1 no such user" or "450 4.2.0 try later".
	Refuse map[string]string
	// Hostname is myhostname, the name in the greeting. Default
	// postfix.test.
	Hostname string
}

// Server is one running Postfix instance owned by a test.
type Server struct {
	// Dir holds the instance's configuration (in Dir/conf), queue, mail
	// and log.
	Dir string
	// SMTPSPort speaks TLS from the first byte; SubmissionPort requires
	// STARTTLS before AUTH. Both listen on 127.0.0.1.
	SMTPSPort, SubmissionPort int
	// CA signed the server certificate (for 127.0.0.1 and localhost).
	CA *smtptest.CA
}

// Start writes a complete Postfix configuration into a new directory,
// starts Postfix and waits until both ports answer. A missing Postfix
// fails the test with how to install it.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	for _, prog := range []string{"postfix", "postmap", "saslpasswd2"} {
		if _, err := exec.LookPath(prog); err != nil {
			tb.Fatalf("postfixtest: %s not found in PATH; install Postfix and Cyrus SASL "+
				"(Debian: DEBIAN_FRONTEND=noninteractive apt-get install postfix sasl2-bin libsasl2-modules; .ci/run does): %v", prog, err)
		}
	}
	if os.Geteuid() != 0 {
		tb.Fatalf("postfixtest: Postfix starts only as root (its master then runs the daemons as the postfix user); run the tests as root, as .ci/run does")
	}
	if opts.Hostname == "" {
		opts.Hostname = "postfix.test"
	}
	s := &Server{Dir: instanceDir(tb), CA: smtptest.NewCA(tb)}
	owner, err := postfixOwner()
	if err != nil {
		tb.Fatalf("postfixtest: %v", err)
	}
	// Registered before anything starts, so a failing start is stopped too.
	tb.Cleanup(func() {
		s.stop()
		if tb.Failed() {
			tb.Logf("postfix log:\n%s", tail(s.Log(), 6000))
		}
	})
	data := configData{Dir: s.Dir, Conf: s.conf(), Hostname: opts.Hostname, UID: owner.uid, GID: owner.gid}
	if err := s.configure(tb, data, owner, opts); err != nil {
		tb.Fatalf("postfixtest: %v", err)
	}
	var lastErr error
	for range 5 { // a free port can be taken between probing and binding
		s.SMTPSPort, s.SubmissionPort = freePort(tb), freePort(tb)
		data.SMTPSPort, data.SubmissionPort = s.SMTPSPort, s.SubmissionPort
		if err := s.writeTemplate("conf/master.cf", masterCF, data); err != nil {
			tb.Fatalf("postfixtest: %v", err)
		}
		// A failed attempt's log (a fatal bind) is not this instance's.
		if err := os.Remove(filepath.Join(s.Dir, "maillog")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			tb.Fatalf("postfixtest: %v", err)
		}
		if lastErr = s.start(); lastErr == nil {
			break
		}
		s.stop()
	}
	if lastErr != nil {
		tb.Fatalf("postfixtest: %v\nlog:\n%s", lastErr, tail(s.Log(), 4000))
	}
	return s
}

// instanceDir makes the instance's directory. Not tb.TempDir: its parent
// is private to root, and Postfix's unprivileged processes must reach the
// queue, the mailbox and the SASL files.
func instanceDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "postfixtest-")
	if err != nil {
		tb.Fatalf("postfixtest: %v", err)
	}
	// Registered before the stop, so it runs after it.
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatalf("postfixtest: %v", err)
	}
	return dir
}

// owner is the uid and gid of mail_owner, which also owns the mailbox.
type owner struct{ uid, gid int }

func postfixOwner() (owner, error) {
	u, err := user.Lookup("postfix")
	if err != nil {
		return owner{}, fmt.Errorf("the postfix user (made by Debian's postfix package): %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return owner{}, fmt.Errorf("postfix uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return owner{}, fmt.Errorf("postfix gid %q: %w", u.Gid, err)
	}
	return owner{uid: uid, gid: gid}, nil
}

// configure writes main.cf, the TLS files, the SASL configuration and
// users, and the access map: all but master.cf, which names the ports.
func (s *Server) configure(tb testing.TB, data configData, own owner, opts Options) error {
	tb.Helper()
	// The queue is root's (`postfix start` makes its subdirectories with
	// the owners it wants); the data directory and the mailbox are the
	// postfix user's, who writes them.
	for _, d := range []string{"queue", "conf/tls", "conf/sasl", "data", "mail"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return fmt.Errorf("configure: %w", err)
		}
	}
	for _, d := range []string{"data", "mail"} {
		if err := os.Chown(filepath.Join(s.Dir, d), own.uid, own.gid); err != nil {
			return fmt.Errorf("configure: %w", err)
		}
	}
	if err := s.writeTemplate("conf/main.cf", mainCF, data); err != nil {
		return err
	}
	if err := s.writeTemplate("conf/sasl/smtpd.conf", smtpdConf, data); err != nil {
		return err
	}
	if err := s.writeTLS(tb); err != nil {
		return err
	}
	if err := s.writeUsers(opts.Users, opts.Hostname, own); err != nil {
		return err
	}
	return s.SetRefusals(opts.Refuse)
}

// writeTemplate fills tmpl with data into path (under Dir).
func (s *Server) writeTemplate(path string, tmpl *template.Template, data configData) error {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return fmt.Errorf("configure: %s: %w", path, err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, path), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	return nil
}

// writeTLS writes the server's key and certificate (smtpd reads them as
// root before it drops privileges).
func (s *Server) writeTLS(tb testing.TB) error {
	tb.Helper()
	leaf := s.CA.Leaf(tb, smtptest.LeafOptions{})
	keyDER, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	var certPEM bytes.Buffer
	for _, der := range leaf.Certificate {
		pem.Encode(&certPEM, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(filepath.Join(s.conf(), "tls", "key.pem"), keyPEM, 0o600); err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.conf(), "tls", "cert.pem"), certPEM.Bytes(), 0o644); err != nil {
		return fmt.Errorf("tls cert: %w", err)
	}
	return nil
}

// writeUsers stores each user in the instance's sasldb with saslpasswd2,
// readable by the postfix group only, as Debian sets /etc/sasldb2.
func (s *Server) writeUsers(users map[string]string, hostname string, own owner) error {
	db := filepath.Join(s.conf(), "sasl", "sasldb2")
	for name, pass := range users {
		user, realm := name, hostname
		if i := strings.LastIndexByte(name, '@'); i >= 0 {
			user, realm = name[:i], name[i+1:]
		}
		cmd := exec.Command("saslpasswd2", "-p", "-c", "-f", db, "-u", realm, user)
		cmd.Stdin = strings.NewReader(pass) // -p: the password from stdin, never in argv
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("saslpasswd2 %s: %w: %s", name, err, out)
		}
	}
	if len(users) == 0 {
		return nil
	}
	if err := os.Chown(db, 0, own.gid); err != nil {
		return fmt.Errorf("sasldb: %w", err)
	}
	if err := os.Chmod(db, 0o640); err != nil {
		return fmt.Errorf("sasldb: %w", err)
	}
	return nil
}

// SetRefusals rewrites the recipient access map (address → RCPT reply)
// and rebuilds it with postmap. smtpd notices the change when a session
// ends, so a session already open may still answer the old way.
func (s *Server) SetRefusals(refuse map[string]string) error {
	src, err := accessMap(refuse)
	if err != nil {
		return err
	}
	path := filepath.Join(s.conf(), "access")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		return fmt.Errorf("postfixtest: access map: %w", err)
	}
	if out, err := exec.Command("postmap", "-c", s.conf(), "hash:"+path).CombinedOutput(); err != nil {
		return fmt.Errorf("postfixtest: postmap: %w: %s", err, out)
	}
	return nil
}

// start runs `postfix start` and waits until both ports accept.
func (s *Server) start() error {
	if out, err := s.postfix("start"); err != nil {
		return fmt.Errorf("postfix start: %w: %s", err, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, port := range []int{s.SMTPSPort, s.SubmissionPort} {
		for {
			c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("postfix did not listen on 127.0.0.1:%d within 15s: %w", port, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// stop runs `postfix stop` (which waits for the master to exit) and then
// kills, by process id, any process of this instance still running.
func (s *Server) stop() {
	if _, err := os.Stat(filepath.Join(s.conf(), "main.cf")); err != nil {
		return
	}
	s.postfix("stop")
	for _, pid := range instanceProcesses(s.conf()) {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
}

func (s *Server) postfix(args ...string) ([]byte, error) {
	return exec.Command("postfix", append([]string{"-c", s.conf()}, args...)...).CombinedOutput()
}

func (s *Server) conf() string { return filepath.Join(s.Dir, "conf") }

// instanceProcesses lists the processes whose environment names dir as
// their configuration directory: Postfix passes MAIL_CONFIG to every
// daemon the master starts.
func instanceProcesses(dir string) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	want := []byte("MAIL_CONFIG=" + dir + "\x00")
	var pids []int
	for _, p := range procs {
		env, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// CAFile writes the CA certificate to a file (for OUTBOUND_SMTP_CA_FILE)
// and returns its path.
func (s *Server) CAFile(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "postfix-ca.pem")
	if err := os.WriteFile(path, s.CA.PEM(), 0o644); err != nil {
		tb.Fatalf("postfixtest: %v", err)
	}
	return path
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("postfixtest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
