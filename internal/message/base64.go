package message

import (
	"encoding/base64"
	"errors"
	"io"
	"strings"
)

// errBase64 reports attachment content that is not standard padded base64
// (RFC 4648 section 4).
var errBase64 = errors.New("message: invalid base64")

// isBase64Space reports the characters tolerated (and skipped) inside
// attachment content: line breaks, as MIME bodies carry them, and spaces.
func isBase64Space(c byte) bool { return c == '\r' || c == '\n' || c == ' ' }

// nextSpace returns the index of the first CR, LF or space in s, or
// len(s); strings.IndexByte makes the common case (long runs without any)
// fast.
func nextSpace(s string) int {
	k := len(s)
	for _, c := range [...]byte{'\n', '\r', ' '} {
		if x := strings.IndexByte(s[:k], c); x >= 0 {
			k = x
		}
	}
	return k
}

// base64DecodedLen checks that s is standard padded base64 once CR, LF and
// spaces are skipped, and returns the number of bytes it decodes to. It
// decodes in fixed chunks on the stack and keeps nothing, so checking a
// large attachment allocates nothing.
func base64DecodedLen(s string) (int64, error) {
	var in [4096]byte // a multiple of 4: chunks are whole quanta
	var out [3072]byte
	var total int64
	n := 0
	padded := false // a chunk ended in padding: nothing may follow
	flush := func() error {
		if padded {
			return errBase64
		}
		k, err := base64.StdEncoding.Decode(out[:], in[:n])
		if err != nil {
			return errBase64
		}
		padded = k < n/4*3
		total += int64(k)
		n = 0
		return nil
	}
	for i := 0; i < len(s); {
		if isBase64Space(s[i]) {
			i++
			continue
		}
		j := i + nextSpace(s[i:min(len(s), i+len(in)-n)])
		n += copy(in[n:], s[i:j])
		i = j
		if n == len(in) {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if n%4 != 0 {
		return 0, errBase64
	}
	if n > 0 {
		if err := flush(); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// spaceSkipper reads a string leaving out spaces, CR and LF, so that
// base64.NewDecoder (which skips only CR and LF) accepts what
// base64DecodedLen accepts.
type spaceSkipper struct {
	s string
}

func (r *spaceSkipper) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && len(r.s) > 0 {
		if isBase64Space(r.s[0]) {
			r.s = r.s[1:]
			continue
		}
		j := nextSpace(r.s[:min(len(r.s), len(p)-n)])
		n += copy(p[n:], r.s[:j])
		r.s = r.s[j:]
	}
	if n == 0 && len(r.s) == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// newContentReader returns the decoded bytes of attachment content s,
// decoded as they are read.
func newContentReader(s string) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, &spaceSkipper{s: s})
}
