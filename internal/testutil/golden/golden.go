// Package golden compares test output with golden files, and rewrites them when tests run with
// -update.
//
// A test checks each output with Check. A test whose outputs are all the files matching a glob
// also calls Prune before its subtests, so that -update deletes outputs no case produces any
// more (a renamed or removed case, or one that now expects an error):
//
//	func TestTranslate(t *testing.T) {
//		golden.Prune(t, "testdata/*.out.yaml")
//		for _, in := range inputs {
//			t.Run(name, func(t *testing.T) { golden.Check(t, out, got) })
//		}
//	}
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output and delete orphaned ones")

// Updating reports whether the test binary runs with -update.
func Updating() bool { return *update }

var (
	mu      sync.Mutex
	checked = map[string]bool{} // absolute paths passed to Check in this run
)

// Check compares got with the golden file at path. With -update it writes got to path instead
// (creating directories as needed).
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	record(path)
	if *update {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, got) {
			return
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("golden: %v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("golden: %v", err)
		}
		t.Logf("golden: updated %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden: %v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("golden: %s differs (run the test with -update to accept the new output):\n%s", path, diff(want, got))
	}
}

// Prune makes -update delete the files matching pattern (a filepath.Glob pattern) that no Check
// call named by the time t and its subtests end. It does nothing without -update, when t failed,
// or when -run or -skip select only some subtests, since unselected cases did not run Check.
func Prune(t testing.TB, pattern string) {
	t.Helper()
	if !*update {
		return
	}
	t.Cleanup(func() {
		if t.Failed() || t.Skipped() || partialRun() {
			t.Logf("golden: not pruning %s: the run failed or was filtered", pattern)
			return
		}
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Errorf("golden: %v", err)
			return
		}
		for _, f := range files {
			if isChecked(f) {
				continue
			}
			if err := os.Remove(f); err != nil {
				t.Errorf("golden: %v", err)
				continue
			}
			t.Logf("golden: deleted orphaned %s", f)
		}
	})
}

func partialRun() bool {
	if f := flag.Lookup("test.run"); f != nil && strings.Contains(f.Value.String(), "/") {
		return true
	}
	if f := flag.Lookup("test.skip"); f != nil && f.Value.String() != "" {
		return true
	}
	return false
}

func abs(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return filepath.Clean(path)
}

func record(path string) {
	mu.Lock()
	defer mu.Unlock()
	checked[abs(path)] = true
}

func isChecked(path string) bool {
	mu.Lock()
	defer mu.Unlock()
	return checked[abs(path)]
}

// diff shows the first differing line with a little context: enough to see what changed without
// a diff library; -update and git diff show the rest.
func diff(want, got []byte) string {
	w := strings.Split(string(want), "\n")
	g := strings.Split(string(got), "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	var b strings.Builder
	from := max(0, i-3)
	for j := from; j < i; j++ {
		fmt.Fprintf(&b, "  %4d   %s\n", j+1, w[j])
	}
	for j := i; j < min(len(w), i+5); j++ {
		fmt.Fprintf(&b, "- %4d   %s\n", j+1, w[j])
	}
	for j := i; j < min(len(g), i+5); j++ {
		fmt.Fprintf(&b, "+ %4d   %s\n", j+1, g[j])
	}
	return b.String()
}
