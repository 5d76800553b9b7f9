package helmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var nuncioBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if nuncioBuild.dir != "" {
		os.RemoveAll(nuncioBuild.dir)
	}
	os.Exit(code)
}

// The version and revision nuncioBinary stamps in, as an image build's --build-arg would.
const (
	testVersion  = "v0.0.0-helmtest"
	testRevision = "0123456789abcdef"
)

// dockerfileLdflags is the -ldflags value of deploy/Dockerfile's go build, with its build
// arguments given the test's values.
var dockerfileLdflags = regexp.MustCompile(`-ldflags "([^"]*)"`)

// nuncioBinary builds cmd/nuncio once for the package with deploy/Dockerfile's -ldflags, so
// that the version it stamps in is checked too.
func nuncioBinary(t *testing.T) string {
	t.Helper()
	nuncioBuild.once.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			nuncioBuild.err = err
			return
		}
		df, err := os.ReadFile(filepath.Join(root, "deploy/Dockerfile"))
		if err != nil {
			nuncioBuild.err = err
			return
		}
		m := dockerfileLdflags.FindSubmatch(df)
		if m == nil {
			nuncioBuild.err = fmt.Errorf("deploy/Dockerfile: no -ldflags \"…\" in its go build")
			return
		}
		ldflags := strings.NewReplacer("${VERSION}", testVersion, "${REVISION}", testRevision).Replace(string(m[1]))
		nuncioBuild.dir, nuncioBuild.err = os.MkdirTemp("", "nuncio-helm-bin-")
		if nuncioBuild.err != nil {
			return
		}
		nuncioBuild.path = filepath.Join(nuncioBuild.dir, "nuncio")
		// Not the Dockerfile's -trimpath and CGO_ENABLED=0: they change every package's build
		// cache key, and a cold build of the whole tree takes many minutes on a busy machine;
		// -ldflags reaches the link step only.
		cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", nuncioBuild.path, "./cmd/nuncio")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			nuncioBuild.err = fmt.Errorf("building nuncio: %v\n%s", err, out)
		}
	})
	if nuncioBuild.err != nil {
		t.Fatal(nuncioBuild.err)
	}
	return nuncioBuild.path
}

// TestImageVersion checks that the build arguments deploy/Dockerfile stamps in reach
// `nuncio version`: the -X names match the variables of cmd/nuncio.
func TestImageVersion(t *testing.T) {
	out, err := exec.Command(nuncioBinary(t), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("nuncio version: %v\n%s", err, out)
	}
	want := "nuncio " + testVersion + " (commit " + testRevision + ", go"
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("nuncio version = %q, want it to start with %q", out, want)
	}
}
