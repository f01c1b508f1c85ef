package pyrun

import (
	"os"
	"testing"
)

// The script gets the arguments and the input, and what it prints comes
// back decoded.
func TestJSON(t *testing.T) {
	paths := Files(t, []byte("one"), []byte("two\r\n"))
	var got struct {
		Args  []string
		Input string
		Sizes []int
	}
	JSON(t, "echo", `
import json, os, sys
print(json.dumps({"args": sys.argv[1:], "input": sys.stdin.read(),
                  "sizes": [os.path.getsize(p) for p in sys.argv[1:]]}))
`, []byte("from stdin"), &got, paths...)
	if len(got.Args) != 2 || got.Args[0] != paths[0] || got.Args[1] != paths[1] {
		t.Errorf("args %v, want %v", got.Args, paths)
	}
	if got.Input != "from stdin" || len(got.Sizes) != 2 || got.Sizes[0] != 3 || got.Sizes[1] != 5 {
		t.Errorf("input %q, sizes %v", got.Input, got.Sizes)
	}
	if b, err := os.ReadFile(paths[1]); err != nil || string(b) != "two\r\n" {
		t.Errorf("file %q %v", b, err)
	}
}
