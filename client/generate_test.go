package client_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedFileIsCurrent regenerates the client from openapi.yaml with
// the committed configuration and fails when the result differs from the
// committed client.gen.go, so the document and the client cannot drift.
func TestGeneratedFileIsCurrent(t *testing.T) {
	const outputLine = "\noutput: client.gen.go\n"
	cfg, err := os.ReadFile("oapi-codegen.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cfg, []byte(outputLine)) {
		t.Fatalf("oapi-codegen.yaml has no line %q", strings.TrimSpace(outputLine))
	}
	dir := t.TempDir()
	fresh := filepath.Join(dir, "client.gen.go")
	tmpCfg := filepath.Join(dir, "oapi-codegen.yaml")
	cfg = bytes.Replace(cfg, []byte(outputLine), []byte("\noutput: "+fresh+"\n"), 1)
	if err := os.WriteFile(tmpCfg, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	// The same command as doc.go's go:generate line, writing elsewhere.
	cmd := exec.Command("go", "tool", "oapi-codegen", "-config", tmpCfg, "../openapi.yaml")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, out)
	}
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("client.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("client.gen.go is not what openapi.yaml generates (run go generate ./client/); first difference:\n%s",
			firstDifference(string(got), string(want)))
	}
}

// firstDifference shows the first line where committed and fresh differ.
func firstDifference(committed, fresh string) string {
	a, b := strings.Split(committed, "\n"), strings.Split(fresh, "\n")
	for i := range max(len(a), len(b)) {
		var la, lb string
		if i < len(a) {
			la = a[i]
		}
		if i < len(b) {
			lb = b[i]
		}
		if la != lb {
			return fmt.Sprintf("line %d\ncommitted: %s\ngenerated: %s", i+1, la, lb)
		}
	}
	return "(none)"
}
