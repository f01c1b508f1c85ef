package client_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeGoExampleCompiles compiles the README's Go client example as
// part of this package's tests (through a build overlay, so nothing is
// written into the tree): an example that no longer matches the generated
// client fails here.
func TestReadmeGoExampleCompiles(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "\n## Go client\n")
	if !ok {
		t.Fatal("README.md has no Go client section")
	}
	_, rest, ok = strings.Cut(rest, "\n```go\n")
	code, _, closed := strings.Cut(rest, "\n```\n")
	if !ok || !closed {
		t.Fatal("README.md's Go client section has no ```go block")
	}
	src := `package client_test

import (
	"context"
	"net/http"

	"github.com/outbound-mail/outbound/client"
)

func readmeExample(ctx context.Context, sendToken string) {
` + code + `
}
`
	dir := t.TempDir()
	file := filepath.Join(dir, "example.go")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	here, err := filepath.Abs("readme_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{here: file}})
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "vet", "-overlay", overlayFile, ".").CombinedOutput(); err != nil {
		t.Fatalf("the README's Go example does not compile against the client: %v\n%s\n%s", err, out, src)
	}
}
