package all_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/all"
	"github.com/nuncio-gw/nuncio/internal/testutil/golden"
)

// TestFiltersDoc keeps docs/filters.md in step with the registry: every built-in filter is
// listed with its metadata and the summary from its package README, and a filter package without
// a README fails the test. Run with -update to regenerate the page.
func TestFiltersDoc(t *testing.T) {
	readmes, err := filepath.Glob("../*/README.md")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("# HTTP filters\n\n")
	b.WriteString("Generated from the filter registry and each filter's README by\n")
	b.WriteString("`go test ./internal/httpfilter/all -run TestFiltersDoc -update`; do not edit by hand.\n\n")
	b.WriteString("| filter | type URLs | status | security posture |\n| --- | --- | --- | --- |\n")
	type entry struct {
		info    httpfilter.Info
		readme  string
		summary string
	}
	var entries []entry
	for _, info := range httpfilter.Default.Infos() {
		readme, summary, ok := findReadme(t, readmes, info.Name)
		if !ok {
			t.Errorf("filter %s: no internal/httpfilter/<pkg>/README.md names it in its opening paragraph", info.Name)
			continue
		}
		entries = append(entries, entry{info, readme, summary})
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s | %s |\n", info.Name, anchor(info.Name),
			"`"+strings.Join(info.TypeURLs, "`<br>`")+"`", info.Status, info.Posture)
	}
	for _, e := range entries {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\nManual: [%s](%s)", e.info.Name, e.summary, e.readme, "../"+e.readme)
		if e.info.Terminal {
			b.WriteString(" · terminal: must be the last filter of a chain")
		}
		b.WriteString("\n")
	}
	golden.Check(t, "../../../docs/filters.md", b.Bytes())
}

// findReadme returns the README (relative to the repository) whose opening paragraph names the
// filter, and that paragraph joined into one line.
func findReadme(t *testing.T, readmes []string, name string) (path, summary string, ok bool) {
	t.Helper()
	for _, p := range readmes {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		para := openingParagraph(string(data))
		if strings.Contains(para, "`"+name+"`") {
			return "internal/httpfilter/" + filepath.Base(filepath.Dir(p)) + "/README.md", para, true
		}
	}
	return "", "", false
}

// openingParagraph is the first paragraph after the title, on one line.
func openingParagraph(md string) string {
	var lines []string
	for _, l := range strings.Split(md, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "#") && len(lines) == 0:
			continue
		case l == "" && len(lines) == 0:
			continue
		case l == "":
			return strings.Join(lines, " ")
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, " ")
}

// anchor is the GitHub-style heading anchor of a filter name.
func anchor(name string) string { return strings.ReplaceAll(name, ".", "") }
