package archtest

import (
	"strings"
)

// layoutBlock returns the fenced code block under the README's "## Layout" heading.
func layoutBlock(readme string) string {
	_, after, ok := strings.Cut(readme, "\n## Layout\n")
	if !ok {
		return ""
	}
	_, block, ok := strings.Cut(after, "```\n")
	if !ok {
		return ""
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// layoutNames returns the paths the README's layout block names: each line's first word, with
// lines indented under "internal/" read relative to it.
func layoutNames(block string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		name := strings.TrimSuffix(fields[0], "/")
		if strings.HasPrefix(line, " ") {
			name = "internal/" + name
		}
		names[name] = true
	}
	return names
}

// checkListed reports the packages (paths relative to the module) that the README's layout
// block or the architecture document does not name, so that a new package is placed in the
// map a newcomer reads first.
func checkListed(rels []string, readme, architecture string) []string {
	block := layoutBlock(readme)
	if block == "" {
		return []string{"README.md: no ``` block under \"## Layout\""}
	}
	names := layoutNames(block)
	var bad []string
	for _, rel := range rels {
		if rel == "" {
			continue
		}
		if !names[rel] {
			bad = append(bad, rel+": not listed in README.md's Layout")
		}
		if !strings.Contains(architecture, rel) {
			bad = append(bad, rel+": not named in docs/architecture.md")
		}
	}
	return bad
}
