package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckMatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.out")
	if err := os.WriteFile(path, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Check(t, path, []byte("x\n"))
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name      string
		want, got string
		contains  []string
	}{
		{name: "changed line", want: "a\nb\nc\n", got: "a\nB\nc\n", contains: []string{"-    2   b", "+    2   B", "     1   a"}},
		{name: "added line", want: "a\n", got: "a\nb\n", contains: []string{"+    2   b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := diff([]byte(tc.want), []byte(tc.got))
			for _, c := range tc.contains {
				if !strings.Contains(d, c) {
					t.Errorf("diff does not contain %q:\n%s", c, d)
				}
			}
		})
	}
}

func TestPruneDeletesUnchecked(t *testing.T) {
	dir := t.TempDir()
	kept := filepath.Join(dir, "kept.out")
	orphan := filepath.Join(dir, "orphan.out")
	for _, f := range []string{kept, orphan} {
		if err := os.WriteFile(f, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := *update
	*update = true
	defer func() { *update = old }()

	t.Run("run", func(t *testing.T) {
		Prune(t, filepath.Join(dir, "*.out"))
		t.Run("case", func(t *testing.T) { Check(t, kept, []byte("x\n")) })
	})
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("checked file was removed: %v", err)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan still exists (err=%v)", err)
	}
}
