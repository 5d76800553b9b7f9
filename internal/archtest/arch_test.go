package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pkg is the part of `go list -json` output the checks use.
type pkg struct {
	ImportPath string
	Name       string
	Dir        string
	GoFiles    []string
	CgoFiles   []string
	Deps       []string
	Error      *struct{ Err string }
}

// rule forbids the packages under any of from to depend on packages under any of deny.
// Paths are relative to the module; "" stands for the whole module. A package never violates a
// rule by depending on packages under its own from prefix. With exact set, from names packages
// rather than trees: the rule does not reach their subpackages.
type rule struct {
	name  string
	from  []string
	deny  []string
	exact bool
}

// runtime are the data-plane packages that serve traffic from a compiled snapshot.
var runtime = []string{
	"internal/listener",
	"internal/netfilter",
	"internal/hcm",
	"internal/httpfilter",
	"internal/route",
	"internal/cluster",
	"internal/upstream",
	"internal/codec",
	"internal/wasm",
}

var rules = []rule{
	{
		name: "model imports nothing from the module",
		from: []string{"internal/model"},
		deny: []string{""},
	},
	{
		name: "runtime packages do not import xds or controller",
		from: runtime,
		deny: []string{"internal/xds", "internal/controller"},
	},
	{
		name: "controller does not import runtime packages",
		from: []string{"internal/controller"},
		deny: runtime,
	},
	{
		// The filter contract, the observers every stream feeds and the decoders stay apart
		// from upstream machinery: a filter sees the route it needs through
		// httpfilter.Route, and only the router (httpfilter/router) reaches clusters.
		name:  "the filter contract, access logs, tracing and decoders do not import cluster or upstream",
		from:  []string{"internal/httpfilter", "internal/accesslog", "internal/tracing", "internal/xds/decode"},
		deny:  []string{"internal/cluster", "internal/upstream"},
		exact: true,
	},
}

// forbiddenNames say nothing about what a package provides.
var forbiddenNames = []string{"util", "utils", "common", "types", "helper", "helpers"}

// under reports whether rel is prefix or inside it.
func under(rel, prefix string) bool {
	return prefix == "" || rel == prefix || strings.HasPrefix(rel, prefix+"/")
}

func underAny(rel string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return under(rel, p) })
}

// relative returns importPath relative to module, and false for packages outside it.
func relative(module, importPath string) (string, bool) {
	if importPath == module {
		return "", true
	}
	rel, ok := strings.CutPrefix(importPath, module+"/")
	return rel, ok
}

// checkDeps returns one message per forbidden dependency.
func checkDeps(module string, pkgs []pkg, rules []rule) []string {
	var bad []string
	for _, p := range pkgs {
		rel, ok := relative(module, p.ImportPath)
		if !ok {
			continue
		}
		for _, r := range rules {
			if r.exact && !slices.Contains(r.from, rel) || !r.exact && !underAny(rel, r.from) {
				continue
			}
			for _, d := range p.Deps {
				drel, ok := relative(module, d)
				if !ok || underAny(drel, r.from) || !underAny(drel, r.deny) {
					continue
				}
				bad = append(bad, fmt.Sprintf("%s: depends on %s (%s)", p.ImportPath, d, r.name))
			}
		}
	}
	return bad
}

// checkNames returns one message per package with a forbidden name, by package clause or by
// directory.
func checkNames(pkgs []pkg) []string {
	var bad []string
	for _, p := range pkgs {
		if slices.Contains(forbiddenNames, p.Name) || slices.Contains(forbiddenNames, path.Base(p.ImportPath)) {
			bad = append(bad, fmt.Sprintf("%s: package name says nothing about what it provides; name it for that", p.ImportPath))
		}
	}
	return bad
}

// checkDocs returns one message per package none of whose non-test files has a package
// comment. Packages with no non-test files, and files that do not parse, are left to the
// compiler.
func checkDocs(pkgs []pkg) []string {
	var bad []string
	for _, p := range pkgs {
		files := append(slices.Clone(p.GoFiles), p.CgoFiles...)
		if len(files) == 0 || hasDoc(p.Dir, files) {
			continue
		}
		bad = append(bad, fmt.Sprintf("%s: no package comment (add one to the main file, or a doc.go)", p.ImportPath))
	}
	return bad
}

func hasDoc(dir string, files []string) bool {
	fset := token.NewFileSet()
	parsed := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			continue
		}
		parsed++
		if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
			return true
		}
	}
	return parsed == 0
}

// goList lists the module's packages.
func goList(t *testing.T) (module string, pkgs []pkg) {
	t.Helper()
	var mod struct{ Path, Dir string }
	if err := json.Unmarshal(run(t, "", "go", "list", "-m", "-json"), &mod); err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	// -e reports broken packages instead of failing, so that one package that does not compile
	// does not hide the layout of all the others.
	out := run(t, mod.Dir, "go", "list", "-e", "-json=ImportPath,Name,Dir,GoFiles,CgoFiles,Deps,Error", "./...")
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return mod.Path, pkgs
}

func run(t *testing.T, dir string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	// In a go.work, go list -m would list every module of the workspace; the rules are this
	// module's.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func TestLayout(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	module, pkgs := goList(t)
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	for _, p := range pkgs {
		if p.Error != nil {
			t.Logf("%s: %s (checked as far as go list can describe it)", p.ImportPath, p.Error.Err)
		}
	}
	checks := []struct {
		name string
		bad  []string
	}{
		{name: "import direction", bad: checkDeps(module, pkgs, rules)},
		{name: "package names", bad: checkNames(pkgs)},
		{name: "package comments", bad: checkDocs(pkgs)},
		{name: "packages listed in the docs", bad: checkListed(relatives(module, pkgs), readFile(t, "../../README.md"), readFile(t, "../../docs/architecture.md"))},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			for _, b := range c.bad {
				t.Error(b)
			}
		})
	}
}

func relatives(module string, pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		if rel, ok := relative(module, p.ImportPath); ok {
			out = append(out, rel)
		}
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestCheckListed(t *testing.T) {
	readme := "# x\n\n## Layout\n\n```\ncmd/gw/   main\ninternal/\n  hcm/     manager\n  codec/http1/ codec\n```\n"
	tests := []struct {
		name string
		rels []string
		arch string
		want []string
	}{
		{name: "listed at the top and under internal/", rels: []string{"cmd/gw", "internal/hcm", "internal/codec/http1"}, arch: "cmd/gw internal/hcm internal/codec/http1"},
		{name: "missing from the layout", rels: []string{"internal/route"}, arch: "internal/route", want: []string{"internal/route: not listed in README.md's Layout"}},
		{name: "missing from the architecture", rels: []string{"internal/hcm"}, arch: "", want: []string{"internal/hcm: not named in docs/architecture.md"}},
		{name: "a prefix is not a listing", rels: []string{"internal/codec"}, arch: "internal/codec", want: []string{"internal/codec: not listed in README.md's Layout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := checkListed(tc.rels, readme, tc.arch)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// The checks above pass on a clean tree whether or not they work; these cases make sure each
// one catches what it is for.

const mod = "example.com/gw"

func TestCheckDeps(t *testing.T) {
	tests := []struct {
		name string
		pkgs []pkg
		want []string
	}{
		{
			name: "model may use the standard library and its own subpackages",
			pkgs: []pkg{{ImportPath: mod + "/internal/model", Deps: []string{"time", mod + "/internal/model/duration"}}},
		},
		{
			name: "model may not use another package of the module",
			pkgs: []pkg{{ImportPath: mod + "/internal/model", Deps: []string{"time", mod + "/internal/header"}}},
			want: []string{mod + "/internal/model: depends on " + mod + "/internal/header (model imports nothing from the module)"},
		},
		{
			name: "model may not use the module root",
			pkgs: []pkg{{ImportPath: mod + "/internal/model", Deps: []string{mod}}},
			want: []string{mod + "/internal/model: depends on " + mod + " (model imports nothing from the module)"},
		},
		{
			name: "runtime may use model and other runtime packages",
			pkgs: []pkg{{ImportPath: mod + "/internal/httpfilter/router", Deps: []string{
				mod + "/internal/model", mod + "/internal/route", mod + "/internal/cluster/lb", mod + "/internal/upstream",
			}}},
		},
		{
			name: "a nested runtime package may not reach xds",
			pkgs: []pkg{{ImportPath: mod + "/internal/codec/http1", Deps: []string{mod + "/internal/xds/decode"}}},
			want: []string{mod + "/internal/codec/http1: depends on " + mod + "/internal/xds/decode (runtime packages do not import xds or controller)"},
		},
		{
			name: "runtime may not reach controller",
			pkgs: []pkg{{ImportPath: mod + "/internal/listener", Deps: []string{mod + "/internal/controller/ir"}}},
			want: []string{mod + "/internal/listener: depends on " + mod + "/internal/controller/ir (runtime packages do not import xds or controller)"},
		},
		{
			name: "a prefix match needs a path boundary",
			pkgs: []pkg{{ImportPath: mod + "/internal/routeguide", Deps: []string{mod + "/internal/xds/client"}}},
		},
		{
			name: "controller may use xds but not runtime packages",
			pkgs: []pkg{{ImportPath: mod + "/internal/controller/xdsgen", Deps: []string{mod + "/internal/xds/server", mod + "/internal/hcm"}}},
			want: []string{mod + "/internal/controller/xdsgen: depends on " + mod + "/internal/hcm (controller does not import runtime packages)"},
		},
		{
			name: "the filter contract may not reach cluster",
			pkgs: []pkg{{ImportPath: mod + "/internal/httpfilter", Deps: []string{mod + "/internal/route", mod + "/internal/cluster"}}},
			want: []string{mod + "/internal/httpfilter: depends on " + mod + "/internal/cluster (the filter contract, access logs, tracing and decoders do not import cluster or upstream)"},
		},
		{
			name: "decoders may not reach upstream",
			pkgs: []pkg{{ImportPath: mod + "/internal/xds/decode", Deps: []string{mod + "/internal/upstream"}}},
			want: []string{mod + "/internal/xds/decode: depends on " + mod + "/internal/upstream (the filter contract, access logs, tracing and decoders do not import cluster or upstream)"},
		},
		{
			name: "the router, below the filter contract, may reach cluster and upstream",
			pkgs: []pkg{{ImportPath: mod + "/internal/httpfilter/router", Deps: []string{mod + "/internal/cluster", mod + "/internal/upstream"}}},
		},
		{
			name: "packages outside the module are ignored",
			pkgs: []pkg{{ImportPath: "example.org/other/internal/model", Deps: []string{"example.org/other/internal/x"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkDeps(mod, tc.pkgs, rules); !slices.Equal(got, tc.want) {
				t.Errorf("checkDeps:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestCheckNames(t *testing.T) {
	tests := []struct {
		name string
		pkg  pkg
		bad  bool
	}{
		{name: "a noun for what it provides", pkg: pkg{ImportPath: mod + "/internal/route", Name: "route"}},
		{name: "util by name", pkg: pkg{ImportPath: mod + "/internal/x", Name: "util"}, bad: true},
		{name: "types by directory", pkg: pkg{ImportPath: mod + "/pkg/types", Name: "gwtypes"}, bad: true},
		{name: "common", pkg: pkg{ImportPath: mod + "/internal/common", Name: "common"}, bad: true},
		{name: "helpers", pkg: pkg{ImportPath: mod + "/internal/helpers", Name: "helpers"}, bad: true},
		{name: "a longer name containing one", pkg: pkg{ImportPath: mod + "/internal/typesafe", Name: "typesafe"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(checkNames([]pkg{tc.pkg})) > 0; got != tc.bad {
				t.Errorf("flagged = %t, want %t", got, tc.bad)
			}
		})
	}
}

func TestCheckDocs(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"documented.go":   "// Package x does one thing.\npackage x\n",
		"plain.go":        "package x\n",
		"license.go":      "// Copyright notice, not a doc comment.\n\npackage x\n",
		"broken.go":       "packag x\n",
		"emptycomment.go": "//\npackage x\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		files []string
		bad   bool
	}{
		{name: "one documented file is enough", files: []string{"plain.go", "documented.go"}},
		{name: "no comment", files: []string{"plain.go"}, bad: true},
		{name: "a comment separated by a blank line is not a doc comment", files: []string{"license.go"}, bad: true},
		{name: "an empty comment is not a doc comment", files: []string{"emptycomment.go"}, bad: true},
		{name: "no files: a test-only package", files: nil},
		{name: "unparsable files are the compiler's to report", files: []string{"broken.go"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := len(checkDocs([]pkg{{ImportPath: mod + "/x", Dir: dir, GoFiles: tc.files}})) > 0
			if got != tc.bad {
				t.Errorf("flagged = %t, want %t", got, tc.bad)
			}
		})
	}
}
