package systemtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const modulePath = "github.com/outbound-mail/outbound"

// TestLayoutIsDrawn holds the README's "Layout" drawing to the code: each
// arrow is a real import, each import between drawn packages is an arrow,
// and every package of the module is drawn or named in the section's
// lists, so a new package or dependency cannot go unmentioned.
func TestLayoutIsDrawn(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := readmeSection(t, string(readme), "## Layout")
	drawn, arrows := mermaidGraph(t, section)
	imports := moduleImports(t)

	for _, a := range arrows {
		if !slices.Contains(imports[a[0]], a[1]) {
			t.Errorf("README draws %s --> %s, but %s does not import %s", a[0], a[1], a[0], a[1])
		}
	}
	for from, tos := range imports {
		for _, to := range tos {
			if drawn[from] && drawn[to] && !slices.Contains(arrows, [2]string{from, to}) {
				t.Errorf("%s imports %s: draw %s --> %s in the README's Layout", from, to, from, to)
			}
		}
	}
	for pkg := range imports {
		if !drawn[pkg] && !strings.Contains(section, "`"+pkg+"`") {
			t.Errorf("package %s is neither drawn nor listed in the README's Layout", pkg)
		}
	}
}

// readmeSection is the text from heading to the next heading of its level.
func readmeSection(t *testing.T, readme, heading string) string {
	t.Helper()
	start := strings.Index(readme, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	rest := readme[start+len(heading)+2:]
	if end := strings.Index(rest, "\n## "); end >= 0 {
		rest = rest[:end]
	}
	return rest
}

var arrow = regexp.MustCompile(`^\s*(\S+)\s*-->\s*(\S+)\s*$`)

// mermaidGraph reads the section's mermaid block: the packages it names
// (short names, as drawn) and its arrows.
func mermaidGraph(t *testing.T, section string) (drawn map[string]bool, arrows [][2]string) {
	t.Helper()
	_, block, ok := strings.Cut(section, "```mermaid\n")
	if !ok {
		t.Fatal("README's Layout has no mermaid block")
	}
	block, _, _ = strings.Cut(block, "```")
	drawn = map[string]bool{}
	for _, line := range strings.Split(block, "\n")[1:] { // after "graph TD"
		if m := arrow.FindStringSubmatch(line); m != nil {
			arrows = append(arrows, [2]string{m[1], m[2]})
			drawn[m[1]], drawn[m[2]] = true, true
		} else if name := strings.TrimSpace(line); name != "" {
			drawn[name] = true
		}
	}
	if len(arrows) == 0 {
		t.Fatal("README's Layout draws no arrows")
	}
	return drawn, arrows
}

// moduleImports is each non-test package of the module (by its short
// name: internal/ left out) with the module's packages it imports.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "../...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	short := func(path string) string {
		path = strings.TrimPrefix(path, modulePath+"/")
		return strings.TrimPrefix(path, "internal/")
	}
	imports := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
			GoFiles    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if len(p.GoFiles) == 0 {
			continue // deploy/ and the like: no Go package
		}
		name := short(p.ImportPath)
		imports[name] = []string{}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, modulePath+"/") {
				imports[name] = append(imports[name], short(imp))
			}
		}
	}
	return imports
}
