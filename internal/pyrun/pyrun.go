// Package pyrun runs a Python 3 script for a test and decodes the JSON it
// prints. Tests hand what Outbound writes to Python's email and smtplib,
// readers and clients no one here wrote; this is the one way they start
// them.
package pyrun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// JSON runs script (Python source) with args and stdin (nil: none) and
// decodes what it prints into out. It fails tb when python3 is missing,
// when the script fails (with its stderr), or when it prints no JSON; name
// says which script in those failures.
func JSON(tb testing.TB, name, script string, stdin []byte, out any, args ...string) {
	tb.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		tb.Fatalf("%s needs python3; install it (Debian: apt-get install -y python3): %v", name, err)
	}
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	printed, err := cmd.Output()
	if err != nil {
		tb.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	if err := json.Unmarshal(printed, out); err != nil {
		tb.Fatalf("%s printed no JSON: %v\n%s", name, err, printed)
	}
}

// Files writes each of raws to a file of its own under tb's temporary
// directory and returns their paths, in order: the readers take messages
// as files named on their command line.
func Files(tb testing.TB, raws ...[]byte) []string {
	tb.Helper()
	dir := tb.TempDir()
	paths := make([]string, len(raws))
	for i, raw := range raws {
		paths[i] = filepath.Join(dir, fmt.Sprintf("%d.eml", i))
		if err := os.WriteFile(paths[i], raw, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return paths
}
