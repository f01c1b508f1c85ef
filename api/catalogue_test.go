package api

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/webhook"
)

// These tests hold the strings that Go, Lua, openapi.yaml and the README
// share to their one source: the catalogue in codes.go for the problem and
// field codes, internal/queue's names for statuses, event types and
// consumer groups, internal/redisclock for Redis's clock. They read the
// real files of the module.

const moduleRoot = ".."

// TestCatalogueAgrees: every problem code has a status, a title and a
// meaning, and openapi.yaml's Problem.code and the README's table list
// exactly the catalogue; every field code a package can set is in the
// catalogue, and openapi.yaml's FieldError.code and the README list
// exactly those.
func TestCatalogueAgrees(t *testing.T) {
	var names []string
	for c := range numProblemCodes {
		info := problemCodes[c]
		if info.name == "" || info.status < 400 || info.title == "" || info.meaning == "" {
			t.Errorf("problem code %d has no full entry: %+v", c, info)
		}
		if c.String() != info.name || slices.Contains(names, info.name) {
			t.Errorf("problem code %q is listed twice or answers as another", info.name)
		}
		names = append(names, info.name)
	}
	var fields []string
	for _, f := range fieldCodes {
		if f.name == "" || f.meaning == "" || slices.Contains(fields, f.name) {
			t.Errorf("field code %q is empty, without meaning or listed twice", f.name)
		}
		fields = append(fields, f.name)
	}

	spec := openapi(t)
	problemCode := dig(t, spec, "components", "schemas", "Problem", "properties", "code")
	sameList(t, "openapi.yaml Problem.code enum", strs(t, problemCode["enum"]), names)
	var wantLines []string
	for _, c := range problemCodes {
		wantLines = append(wantLines, fmt.Sprintf("- `%s` (%d): %s", c.name, c.status, c.meaning))
	}
	describes(t, "openapi.yaml Problem.code description", problemCode["description"], wantLines)

	fieldCode := dig(t, spec, "components", "schemas", "FieldError", "properties", "code")
	sameList(t, "openapi.yaml FieldError.code enum", strs(t, fieldCode["enum"]), fields)
	wantLines = nil
	for _, f := range fieldCodes {
		wantLines = append(wantLines, fmt.Sprintf("- `%s`: %s", f.name, f.meaning))
	}
	describes(t, "openapi.yaml FieldError.code description", fieldCode["description"], wantLines)

	problemRows, fieldRows := readmeErrorCodes(t)
	var want [][]string
	for _, c := range problemCodes {
		want = append(want, []string{"`" + c.name + "`", strconv.Itoa(c.status), c.meaning})
	}
	sameRows(t, "README problem codes", problemRows, want)
	want = nil
	for _, f := range fieldCodes {
		want = append(want, []string{"`" + f.name + "`", f.meaning})
	}
	sameRows(t, "README field codes", fieldRows, want)

	set := setFieldCodes(t)
	for _, c := range set {
		if !slices.Contains(fields, c) {
			t.Errorf("field code %q is set by the code but not in fieldCodes (codes.go)", c)
		}
	}
	for _, c := range fields {
		if !slices.Contains(set, c) {
			t.Errorf("field code %q is in fieldCodes but nothing sets it", c)
		}
	}
}

// TestNamesAgree: openapi.yaml's status and event enums are the queue's,
// webhooks take the queue's event types, the README names each, and no Lua
// script spells a status, an event type, a consumer group or Redis's clock
// itself: they take them from queue's names and internal/redisclock.
func TestNamesAgree(t *testing.T) {
	var statuses, recipients []string
	for _, s := range queue.Statuses() {
		statuses = append(statuses, string(s))
	}
	for _, s := range queue.RecipientStatuses() {
		recipients = append(recipients, string(s))
	}
	events := queue.EventTypes()
	sameList(t, "webhook.EventTypes", webhook.EventTypes, events)

	// Every enum of the spec holding a status or an event type is one of
	// the three lists, whatever schema it sits in.
	found := map[string]int{}
	for path, enum := range enums(openapi(t)) {
		switch {
		case slices.ContainsFunc(enum, func(v string) bool { return strings.HasPrefix(v, "message.") }):
			sameList(t, "openapi.yaml "+path+" (event types)", enum, events)
			found["events"]++
		case slices.Contains(enum, string(queue.StatusQueued)):
			sameList(t, "openapi.yaml "+path+" (statuses)", enum, statuses)
			found["statuses"]++
		case slices.ContainsFunc(enum, func(v string) bool { return slices.Contains(statuses, v) }):
			sameList(t, "openapi.yaml "+path+" (recipient statuses)", enum, recipients)
			found["recipients"]++
		}
	}
	for _, k := range []string{"events", "statuses", "recipients"} {
		if found[k] == 0 {
			t.Errorf("openapi.yaml has no enum of the %s", k)
		}
	}
	readme, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if !strings.Contains(string(readme), `"`+e+`"`) {
			t.Errorf("README.md does not list the event type %q", e)
		}
	}

	// Go spells an event type only where queue builds them.
	goFiles(t, func(dir string, f *ast.File, fset *token.FileSet) {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			pos := fset.Position(lit.Pos())
			if v, _ := strconv.Unquote(lit.Value); strings.HasPrefix(v, "message.") &&
				pos.Filename != filepath.Join(moduleRoot, "internal", "queue", "names.go") {
				t.Errorf("%s: spells the event type %q; use queue.Status.Event or queue.EventTypes", pos, v)
			}
			return true
		})
	})

	groups := constValues(t, filepath.Join(moduleRoot, "internal", "queue"), "group", "eventGroup")
	quoted := regexp.MustCompile(`'([^'\n]*)'|"([^"\n]*)"`)
	named := regexp.MustCompile(`\b(STATUS|FINAL|EVENT)(?:\.([a-z_]+)|\[['"]([a-z_]+)['"]\])`)
	scripts := luaSources(t)
	if len(scripts) < 10 {
		t.Fatalf("found %d Lua scripts; the scan misses them", len(scripts))
	}
	for _, lua := range scripts {
		if strings.Contains(lua.src, "redis.call('TIME')") && lua.pos.Filename != filepath.Join(moduleRoot, "internal", "redisclock", "redisclock.go") {
			t.Errorf("%s: reads TIME itself; start the script with redisclock.Lua", lua.pos)
		}
		for _, m := range quoted.FindAllStringSubmatch(lua.src, -1) {
			v := m[1] + m[2]
			if slices.Contains(statuses, v) || slices.Contains(groups, v) || strings.HasPrefix(v, "message.") {
				t.Errorf("%s: Lua spells %q; use queue's luaNames (STATUS, EVENT, GROUP)", lua.pos, v)
			}
		}
		for _, m := range named.FindAllStringSubmatch(lua.src, -1) {
			name := m[2] + m[3]
			if !slices.Contains(statuses, name) {
				t.Errorf("%s: Lua names %s.%s, not a status", lua.pos, m[1], name)
			}
			if _, ok := queue.Status(name).Event(); m[1] == "EVENT" && !ok {
				t.Errorf("%s: Lua names EVENT.%s, a status without an event", lua.pos, name)
			}
			if m[1] == "FINAL" && !queue.Status(name).Final() {
				t.Errorf("%s: Lua names FINAL.%s, not a final status", lua.pos, name)
			}
		}
	}
}

func openapi(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return doc
}

// dig follows keys down the document.
func dig(t *testing.T, doc map[string]any, keys ...string) map[string]any {
	t.Helper()
	m := doc
	for i, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("openapi.yaml has no %s", strings.Join(keys[:i+1], "."))
		}
		m = next
	}
	return m
}

// enums finds every enum of the document by its path.
func enums(doc any) map[string][]string {
	out := map[string][]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if list, ok := child.([]any); ok && k == "enum" {
					var vals []string
					for _, x := range list {
						vals = append(vals, fmt.Sprint(x))
					}
					out[path] = vals
					continue
				}
				walk(path+"."+k, child)
			}
		case []any:
			for i, child := range v {
				walk(path+"["+strconv.Itoa(i)+"]", child)
			}
		}
	}
	walk("", doc)
	return out
}

func strs(t *testing.T, v any) []string {
	t.Helper()
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func sameList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s is\n  %v\nwant (the Go source's)\n  %v", what, got, want)
	}
}

// describes checks that a description lists exactly the lines wanted, in
// order, each on a line of its own starting "- `".
func describes(t *testing.T, what string, desc any, want []string) {
	t.Helper()
	s, _ := desc.(string)
	var got []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "- `") {
			got = append(got, line)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s does not list the catalogue; it should list, one a line:\n%s", what, strings.Join(want, "\n"))
	}
}

func sameRows(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	if !slices.EqualFunc(got, want, slices.Equal) {
		var b strings.Builder
		for _, r := range want {
			b.WriteString("| " + strings.Join(r, " | ") + " |\n")
		}
		t.Errorf("%s are not the catalogue's; the rows should be:\n%s", what, b.String())
	}
}

// readmeErrorCodes reads the two tables under the README's "Error codes"
// heading: problem codes (code, status, meaning), then field codes (code,
// meaning).
func readmeErrorCodes(t *testing.T) (problems, fields [][]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			in = strings.TrimLeft(line, "# ") == "Error codes"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), " | ") {
			cells = append(cells, strings.TrimSpace(c))
		}
		if len(cells) == 3 {
			problems = append(problems, cells)
		} else {
			fields = append(fields, cells)
		}
	}
	if problems == nil || fields == nil {
		t.Fatal(`README.md has no "Error codes" section with its two tables`)
	}
	return problems, fields
}

// goFiles parses every non-test Go file of the module.
func goFiles(t *testing.T, fn func(dir string, f *ast.File, fset *token.FileSet)) {
	t.Helper()
	fset := token.NewFileSet()
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != moduleRoot {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		// Generated code (the Go client) follows openapi.yaml, which is
		// checked above; its spellings are the document's, not copies.
		if ast.IsGenerated(f) {
			return nil
		}
		fn(filepath.Dir(path), f, fset)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// constValues is the value of each named string constant of the package in dir.
func constValues(t *testing.T, dir string, names ...string) []string {
	t.Helper()
	consts := map[string]string{}
	goFiles(t, func(d string, f *ast.File, _ *token.FileSet) {
		if d == dir {
			for k, v := range stringConsts(f) {
				consts[k] = v
			}
		}
	})
	var out []string
	for _, n := range names {
		v, ok := consts[n]
		if !ok {
			t.Fatalf("%s declares no string constant %s", dir, n)
		}
		out = append(out, v)
	}
	return out
}

func stringConsts(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						out[name.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	return out
}

type luaSource struct {
	pos token.Position
	src string
}

// luaSources finds the module's Lua: its raw string literals that call Redis.
func luaSources(t *testing.T) []luaSource {
	t.Helper()
	var out []luaSource
	goFiles(t, func(_ string, f *ast.File, fset *token.FileSet) {
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && strings.HasPrefix(lit.Value, "`") &&
				strings.Contains(lit.Value, "redis.call") {
				out = append(out, luaSource{fset.Position(lit.Pos()), strings.Trim(lit.Value, "`")})
			}
			return true
		})
	})
	return out
}

// setFieldCodes finds every field code the module's code can set: the code
// argument of each errs.Add(field, code, message) and of each local
// add(code, message) helper, as a literal or a constant of its package,
// and the constants declared in a block documented as FieldError codes
// (those a helper passes on from a variable).
func setFieldCodes(t *testing.T) []string {
	t.Helper()
	type call struct {
		dir string
		arg ast.Expr
	}
	var calls []call
	consts := map[string]map[string]string{}
	var documented []string
	goFiles(t, func(dir string, f *ast.File, _ *token.FileSet) {
		if consts[dir] == nil {
			consts[dir] = map[string]string{}
		}
		for k, v := range stringConsts(f) {
			consts[dir][k] = v
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST && g.Doc != nil &&
				strings.Contains(g.Doc.Text(), "FieldError") {
				for _, v := range stringConsts(&ast.File{Decls: []ast.Decl{g}}) {
					documented = append(documented, v)
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fun := c.Fun.(type) {
			case *ast.SelectorExpr:
				if fun.Sel.Name == "Add" && len(c.Args) == 3 {
					calls = append(calls, call{dir, c.Args[1]})
				}
			case *ast.Ident:
				if fun.Name == "add" && len(c.Args) == 2 {
					calls = append(calls, call{dir, c.Args[0]})
				}
			}
			return true
		})
	})
	set := documented
	for _, c := range calls {
		var v string
		switch a := c.arg.(type) {
		case *ast.BasicLit:
			v, _ = strconv.Unquote(a.Value)
		case *ast.Ident:
			v = consts[c.dir][a.Name]
		}
		if v != "" && !slices.Contains(set, v) {
			set = append(set, v)
		}
	}
	if len(set) < 10 {
		t.Fatalf("found %d field codes; the scan misses them", len(set))
	}
	slices.Sort(set)
	return slices.Compact(set)
}
