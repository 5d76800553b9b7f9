package helmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// nuncioBinary builds cmd/nuncio once for the package.
func nuncioBinary(t *testing.T) string {
	t.Helper()
	nuncioBuild.once.Do(func() {
		nuncioBuild.dir, nuncioBuild.err = os.MkdirTemp("", "nuncio-helm-bin-")
		if nuncioBuild.err != nil {
			return
		}
		nuncioBuild.path = filepath.Join(nuncioBuild.dir, "nuncio")
		out, err := exec.Command("go", "build", "-o", nuncioBuild.path, "../../cmd/nuncio").CombinedOutput()
		if err != nil {
			nuncioBuild.err = fmt.Errorf("building nuncio: %v\n%s", err, out)
		}
	})
	if nuncioBuild.err != nil {
		t.Fatal(nuncioBuild.err)
	}
	return nuncioBuild.path
}
