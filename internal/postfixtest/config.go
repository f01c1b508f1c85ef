package postfixtest

import (
	"fmt"
	"sort"
	"strings"
	"text/template"
)

// configData is what the configuration templates are filled with.
type configData struct {
	// Dir holds the instance; Conf (its config_directory) is a separate
	// root-owned tree, since `postfix start` warns about anything in it
	// that the postfix user owns or can write.
	Dir, Conf      string
	Hostname       string
	SMTPSPort      int
	SubmissionPort int
	UID, GID       int
}

// mainCF is the instance's main.cf. Every path is inside the instance's
// directory; nothing under /etc/postfix or /var is read or written except
// Postfix's own programs and meta files (postfix-files, dynamicmaps.cf).
var mainCF = template.Must(template.New("main.cf").Parse(`# Written by internal/postfixtest for one test.
compatibility_level = 3.6
queue_directory = {{.Dir}}/queue
data_directory = {{.Dir}}/data
mail_owner = postfix
setgid_group = postdrop

myhostname = {{.Hostname}}
mydomain = {{.Hostname}}
myorigin = $myhostname
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
biff = no
append_dot_mydomain = no
readme_directory = no
# No syslog: the log is a file the test reads.
maillog_file = {{.Dir}}/maillog
maillog_file_prefixes = {{.Dir}}
# No aliases: the default would look for /etc/aliases and NIS.
alias_maps =
alias_database =

# One mailbox for every recipient at every domain: a static lookup matches
# any key, so every domain is a virtual mailbox domain and every address
# lands in the Maildir box/ (the virtual agent adds Delivered-To, which
# tells the copies apart).
virtual_mailbox_domains = static:all
virtual_mailbox_base = {{.Dir}}/mail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:{{.UID}}
virtual_gid_maps = static:{{.GID}}
virtual_minimum_uid = 1

smtputf8_enable = yes
# Without these two Postfix adds a missing Date or Message-ID for loopback
# clients and hides the sender's mistake.
local_header_rewrite_clients =
always_add_missing_headers = no

smtpd_tls_chain_files = {{.Conf}}/tls/key.pem, {{.Conf}}/tls/cert.pem
smtpd_tls_security_level = may
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {{.Conf}}/sasl
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = check_recipient_access hash:{{.Conf}}/access, permit_sasl_authenticated, reject
# Strict about pipelining, as a careful server is.
smtpd_forbid_unauth_pipelining = yes
smtpd_data_restrictions = reject_unauth_pipelining
`))

// masterCF is the instance's master.cf: the two submission ports on
// loopback and the internal services Postfix needs, every one unchrooted
// (chroot column n) so smtpd reads the SASL files in the instance's
// directory. There is no port-25 smtpd and nothing delivers off the
// machine.
var masterCF = template.Must(template.New("master.cf").Parse(`# Written by internal/postfixtest for one test.
# service  type  private unpriv chroot wakeup maxproc command
127.0.0.1:{{.SMTPSPort}} inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
127.0.0.1:{{.SubmissionPort}} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 300  1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
proxywrite unix  - - n -    1 proxymap
smtp       unix  - - n -    - smtp
relay      unix  - - n -    - smtp
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
local      unix  - n n -    - local
virtual    unix  - n n -    - virtual
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
`))

// smtpdConf is Cyrus SASL's configuration for smtpd: passwords from the
// instance's own sasldb (sasldb_path), not /etc/sasldb2.
var smtpdConf = template.Must(template.New("smtpd.conf").Parse(`pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: {{.Conf}}/sasl/sasldb2
`))

// accessMap is the source of the recipient access map: one line per
// address, its reply (for example "550 5.1.1 no such user"), sorted so
// the file is the same for the same refusals.
func accessMap(refuse map[string]string) (string, error) {
	addrs := make([]string, 0, len(refuse))
	for a := range refuse {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	var b strings.Builder
	for _, a := range addrs {
		reply := refuse[a]
		if strings.ContainsAny(a, " \t\r\n") || strings.ContainsAny(reply, "\r\n") {
			return "", fmt.Errorf("postfixtest: refusal %q: %q: no blanks in an address, one line per reply", a, reply)
		}
		fmt.Fprintf(&b, "%s %s\n", a, reply)
	}
	return b.String(), nil
}
