package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// revision is the commit the binary was built from, set at build time with
// -ldflags "-X main.revision=…" where the build has no VCS metadata of its own (an image build
// whose context leaves .git out); otherwise Go's vcs.revision stamp says it.
var revision = ""

// versionLine is what `nuncio version` prints: the version and, when the build recorded them,
// the commit, its time, whether the tree had uncommitted changes, and the Go toolchain, so that
// a running image can be traced to its source.
func versionLine() string {
	var b strings.Builder
	b.WriteString("nuncio ")
	b.WriteString(versionString())
	bi, _ := debug.ReadBuildInfo()
	var settings []debug.BuildSetting
	if bi != nil {
		settings = bi.Settings
	}
	fields := buildFields(revision, settings)
	fields = append(fields, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
	fmt.Fprintf(&b, " (%s)", strings.Join(fields, ", "))
	return b.String()
}

// buildFields reads the commit, its time and the modified flag from the build settings; rev,
// when set, wins over vcs.revision.
func buildFields(rev string, settings []debug.BuildSetting) []string {
	var vcsRev, vcsTime string
	modified := false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			vcsRev = s.Value
		case "vcs.time":
			vcsTime = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		rev = vcsRev
	}
	var fields []string
	if rev != "" {
		if modified && rev == vcsRev {
			rev += "-dirty"
		}
		fields = append(fields, "commit "+rev)
	}
	if vcsTime != "" {
		fields = append(fields, "committed "+vcsTime)
	}
	return fields
}
