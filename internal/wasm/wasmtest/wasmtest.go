// Package wasmtest builds the proxy-wasm plugins the host's tests run: Go programs under
// testdata/plugins, compiled with the stock Go toolchain for wasip1 against the
// proxy-wasm-go-sdk version pinned in testdata/plugins/go.mod (fetched from the module proxy).
//
// Builds are cached under the user cache directory, keyed by the Go version and the sources,
// so only the first run of a machine pays for them. Without a go command the tests skip,
// except in CI (CI=true), where that is a failure.
//
// NUNCIO_WASM_SDK_EXAMPLES may name the examples directory of a proxy-wasm-go-sdk checkout:
// plugins with the same name as an example (helloworld, http_headers, ...) are then built from
// there instead, so the same tests run the SDK's own examples.
package wasmtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{}
)

// Build returns the wasm of the test plugin name, building it if needed.
func Build(tb testing.TB, name string) []byte {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[name]; ok {
		return b
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(goruntime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(goBin); serr != nil {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("wasmtest: no go command to build plugin %s: %v", name, err)
			}
			tb.Skipf("wasmtest: no go command to build plugin %s: %v", name, err)
		}
	}
	modDir, pkg := pluginsDir(tb), "./"+name
	if ex := os.Getenv("NUNCIO_WASM_SDK_EXAMPLES"); ex != "" {
		if st, err := os.Stat(filepath.Join(ex, name, "go.mod")); err == nil && !st.IsDir() {
			modDir, pkg = filepath.Join(ex, name), "."
		}
	}
	key := cacheKey(tb, goBin, modDir, pkg)
	cacheDir, err := os.UserCacheDir()
	if err != nil {
		cacheDir = os.TempDir()
	}
	out := filepath.Join(cacheDir, "nuncio-test", "wasm", key, name+".wasm")
	if b, err := os.ReadFile(out); err == nil {
		built[name] = b
		return b
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.CreateTemp(filepath.Dir(out), name+"-*.tmp")
	if err != nil {
		tb.Fatal(err)
	}
	tmp := f.Name()
	_ = f.Close()
	defer os.Remove(tmp)
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", tmp, pkg)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("wasmtest: building plugin %s in %s: %v\n%s", name, modDir, err, msg)
	}
	// Rename is atomic: a concurrent test binary sees the old state or the whole file.
	if err := os.Rename(tmp, out); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	built[name] = b
	return b
}

func pluginsDir(tb testing.TB) string {
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		tb.Fatal("wasmtest: cannot locate testdata")
	}
	return filepath.Join(filepath.Dir(file), "testdata", "plugins")
}

// cacheKey hashes the Go version and every file the build reads from the module (go.mod,
// go.sum, the package's sources), which pins the SDK version too.
func cacheKey(tb testing.TB, goBin, modDir, pkg string) string {
	h := sha256.New()
	v, err := exec.Command(goBin, "env", "GOVERSION").Output()
	if err != nil {
		tb.Fatalf("wasmtest: go env GOVERSION: %v", err)
	}
	h.Write(bytes.TrimSpace(v))
	for _, f := range []string{"go.mod", "go.sum"} {
		b, _ := os.ReadFile(filepath.Join(modDir, f))
		h.Write(b)
	}
	err = filepath.WalkDir(filepath.Join(modDir, pkg), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".go" {
			return err
		}
		b, err := os.ReadFile(path)
		h.Write([]byte(d.Name()))
		h.Write(b)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
