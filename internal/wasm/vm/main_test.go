package vm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
	"github.com/nuncio-gw/nuncio/internal/wasm/abi"
	"github.com/nuncio-gw/nuncio/internal/wasm/runtime"
	"github.com/nuncio-gw/nuncio/internal/wasm/vm"
	"github.com/nuncio-gw/nuncio/internal/wasm/wasmtest"
)

// One host for the package's tests, so that each plugin compiles once per run, and through
// a compilation cache kept in the user cache directory, once per machine. The tests of the
// cache itself (in package runtime) use their own empty directories.
var (
	cacheDir string
	hostOnce sync.Once
	host     *vm.Host
	hostErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if host != nil {
		_ = host.Close(context.Background())
	}
	os.Exit(code)
}

func testHost(t testing.TB) *vm.Host {
	t.Helper()
	hostOnce.Do(func() {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		cacheDir = filepath.Join(dir, "nuncio-test", "wazero")
		if hostErr = os.MkdirAll(cacheDir, 0o755); hostErr == nil {
			host, hostErr = vm.NewHost(context.Background(), runtime.Config{CacheDir: cacheDir})
		}
	})
	if hostErr != nil {
		t.Fatal(hostErr)
	}
	return host
}

// cacheDirFor is the shared compilation cache, for tests that need a host of their own.
func cacheDirFor(t testing.TB) string {
	testHost(t)
	return cacheDir
}

// logRecorder keeps every log line of a plugin, for tests that look for the lines the
// SDK examples' own tests look for.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Log(level abi.LogLevel, plugin string, msg []byte) {
	r.mu.Lock()
	r.lines = append(r.lines, level.String()+" "+string(msg))
	r.mu.Unlock()
}

func (r *logRecorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// waitLog waits (boundedly) for a line containing each of want.
func (r *logRecorder) waitLog(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		wait.NoError(t, fmt.Sprintf("a log line with %q", w), func() error {
			if !r.has(w) {
				return fmt.Errorf("log:\n%s", r)
			}
			return nil
		})
	}
}

func load(t testing.TB, plugin string, cfg vm.Config) (*vm.Plugin, *logRecorder) {
	t.Helper()
	h := testHost(t)
	return loadOn(t, h, plugin, cfg)
}

func loadOn(t testing.TB, h *vm.Host, plugin string, cfg vm.Config) (*vm.Plugin, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	if cfg.Log == nil {
		cfg.Log = rec
	}
	if cfg.Name == "" {
		cfg.Name = plugin
	}
	p, err := h.Load(context.Background(), wasmtest.Build(t, plugin), cfg)
	if err != nil {
		t.Fatalf("load %s: %v", plugin, err)
	}
	t.Cleanup(p.Close)
	return p, rec
}

func requestHeaders(fields ...string) *header.Map {
	m := &header.Map{Method: "GET", Scheme: "http", Authority: "localhost:18000", Path: "/uuid"}
	for i := 0; i+1 < len(fields); i += 2 {
		m.Add(fields[i], fields[i+1])
	}
	return m
}
