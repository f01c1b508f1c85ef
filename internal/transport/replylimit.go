package transport

import (
	"errors"
	"fmt"
	"net"
	"unicode/utf8"
)

// Bounds on what a server may send as one reply, so that a hostile or
// broken server (one that sends an endless line, or a reply that never
// ends) costs a session a few KiB, not all the memory it can get.
//
// RFC 5321 §4.5.3.1.5 allows 512 octets a reply line, and real servers go
// past it. go-smtp's own reader refuses a line past 2000 octets (twice the
// §4.5.3.1.6 text line), so the bound here is the same: a reply line that
// goes through one reader of the session goes through all of them. A reply
// of many lines (EHLO lists the extensions, a refusal may explain itself
// over several lines) is bounded as a whole at 64 KiB: the longest real
// replies are a few KiB, and textproto holds the whole reply in memory
// before it returns it.
const (
	maxReplyLine  = 2000
	maxReplyBytes = 64 << 10
)

// MaxReplyText is the most bytes of a server's reply text that an Error,
// a Rejection or a Result carries; a longer text is cut on a UTF-8
// boundary and ends in "…". Everything stored from a reply (attempts, a
// profile's last_error, suppression reasons, events) is cut by it.
const MaxReplyText = 1024

var (
	errReplyTooLong = errors.New("server reply too long")
	errLineTooLong  = fmt.Errorf("%w: a line longer than %d bytes", errReplyTooLong, maxReplyLine)
	errTooManyLines = fmt.Errorf("%w: more than %d bytes in one reply", errReplyTooLong, maxReplyBytes)
)

// replyLimiter is the read side of a session's connection, beneath every
// reader of replies (go-smtp's, the STARTTLS opening's, the pipeline's):
// it follows the replies in the stream and fails the read, for good, at
// the first byte past a bound. Replies are self-delimiting, so it needs
// no help from the readers above: a reply ends with a line that has its
// first line's code followed by a space, which is where textproto's
// ReadResponse ends one (a first line without "-" after its code is a
// reply of one line, or one textproto refuses).
//
// It hands on whole lines only. bufio, beneath textproto, returns the
// bytes it holds as a line when the read after them fails, so the start
// of a line that went on too long would pass for a reply ("250 xxx..."
// taken as a yes); held back here, it never reaches them.
type replyLimiter struct {
	net.Conn
	// buf holds what was read from Conn and not yet handed on: whole
	// lines in buf[:done], then the start of a line. It never holds more
	// than a line and one read's worth.
	buf  []byte
	done int
	err  error // the bound that was crossed

	line  int     // bytes of the current line read so far
	reply int     // bytes of the current reply read so far
	head  [4]byte // the current line's first four bytes
	code  [3]byte // the current reply's code, once its first line is read
	first bool    // the current line is its reply's first
}

// readSize is how much the limiter asks of the connection at a time.
const readSize = 4 << 10

func limitReplies(conn net.Conn) *replyLimiter {
	return &replyLimiter{Conn: conn, first: true}
}

// Read hands on whole lines. An error of the connection read with lines
// still to hand on comes again on the next read from it (net.Conn and
// tls.Conn errors do).
func (r *replyLimiter) Read(p []byte) (int, error) {
	for r.done == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if err := r.fill(); err != nil && r.done == 0 {
			return 0, err
		}
	}
	n := copy(p, r.buf[:r.done])
	r.buf = append(r.buf[:0], r.buf[n:]...)
	r.done -= n
	return n, nil
}

// fill reads once from the connection and follows what came.
func (r *replyLimiter) fill() error {
	if r.buf == nil {
		r.buf = make([]byte, 0, maxReplyLine+readSize)
	}
	start := len(r.buf)
	n, err := r.Conn.Read(r.buf[start:cap(r.buf)])
	r.buf = r.buf[:start+n]
	for i := start; i < len(r.buf); i++ {
		if r.err = r.take(r.buf[i]); r.err != nil {
			r.buf = r.buf[:r.done] // the line past the bound goes
			return r.err
		}
		if r.buf[i] == '\n' {
			r.done = i + 1
		}
	}
	return err
}

// buffered is how many bytes were read and not yet handed on.
func (r *replyLimiter) buffered() int { return len(r.buf) }

// take counts one byte of the stream.
func (r *replyLimiter) take(b byte) error {
	r.line++
	r.reply++
	switch {
	case r.line > maxReplyLine:
		return errLineTooLong
	case r.reply > maxReplyBytes:
		return errTooManyLines
	}
	if r.line <= len(r.head) {
		r.head[r.line-1] = b
	}
	if b == '\n' {
		r.endLine()
	}
	return nil
}

// endLine notes where the line just read leaves its reply.
func (r *replyLimiter) endLine() {
	long := r.line > len(r.head)
	var ends bool
	if r.first {
		copy(r.code[:], r.head[:3])
		ends = !long || r.head[3] != '-'
	} else {
		ends = long && r.head[3] == ' ' && [3]byte(r.head[:3]) == r.code
	}
	r.line, r.first = 0, ends
	if ends {
		r.reply = 0
	}
}

// clip cuts a server's text to MaxReplyText bytes, on a UTF-8 boundary,
// marking the cut with "…".
func clip(s string) string {
	if len(s) <= MaxReplyText {
		return s
	}
	const mark = "…"
	cut := MaxReplyText - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
