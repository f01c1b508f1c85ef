package systemtest

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

// TestMain also checks, after a full run, that the tests exercised every
// operation openapi.yaml documents: a documented endpoint that no test
// calls could drift from its description unnoticed.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && spec.doc != nil {
		if missing := unexercised(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "openapi.yaml operations no test called: %s\n", strings.Join(missing, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

func unexercised() []string {
	spec.mu.Lock()
	defer spec.mu.Unlock()
	var missing []string
	for path, item := range spec.doc.Paths.Map() {
		for method := range item.Operations() {
			found := false
			for seen := range spec.seen {
				if strings.HasPrefix(seen, method+" "+path+" ") {
					found = true
					break
				}
			}
			if !found {
				missing = append(missing, method+" "+path)
			}
		}
	}
	sort.Strings(missing)
	return missing
}
