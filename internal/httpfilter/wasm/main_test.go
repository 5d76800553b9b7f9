package wasm_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/server"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
	"github.com/nuncio-gw/nuncio/internal/wasm/wasmtest"

	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/all"
)

// logs keeps every plugin log line of the process (the filter logs through slog.Default).
var logs = &logRecorder{}

func TestMain(m *testing.M) {
	// The compilation cache the host's own tests fill, so each plugin compiles once per
	// machine rather than once per run.
	if os.Getenv("NUNCIO_WASM_CACHE_DIR") == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			os.Setenv("NUNCIO_WASM_CACHE_DIR", filepath.Join(dir, "nuncio-test", "wazero"))
		}
	}
	slog.SetDefault(slog.New(logs))
	os.Exit(m.Run())
}

// logRecorder is a slog.Handler that keeps the plugins' lines ("wasm log" records).
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message != "wasm log" {
		return nil
	}
	var plugin, msg string
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "plugin":
			plugin = a.Value.String()
		case "msg":
			msg = a.Value.String()
		}
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, plugin+": "+msg)
	r.mu.Unlock()
	return nil
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

// waitLog waits for a plugin log line containing s: on_log and the response can race.
func waitLog(t *testing.T, s string) {
	t.Helper()
	wait.For(t, fmt.Sprintf("a plugin log line with %q", s), func() bool { return logs.has(s) })
}

// pluginFile writes the test plugin name to dir and returns its path.
func pluginFile(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name+".wasm")
	if err := os.WriteFile(p, wasmtest.Build(t, name), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startTimeout bounds a server's start in these tests: a hang fails, a slow machine does not.
const startTimeout = 5 * time.Minute

// running is a server run from a config file, as `nuncio run` does.
type running struct {
	s    *server.Server
	path string
}

// run writes yaml to a config file in dir and serves it until the test ends.
func run(t testing.TB, dir, yaml string) *running {
	t.Helper()
	path := filepath.Join(dir, "nuncio.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s := server.New(server.Options{
		ConfigPath: path, AdminAddress: "127.0.0.1:0", DrainTime: wait.Timeout,
		Logger: slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	// Starting loads every plugin (compiles or reads the compilation cache, starts a first
	// instance each), which under the race detector takes longer than wait's bound.
	deadline := time.Now().Add(startTimeout)
	for len(s.ListenerStatus()) == 0 {
		select {
		case err := <-done:
			t.Fatalf("server stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start within %v", startTimeout)
		}
	}
	return &running{s: s, path: path}
}

// addr is the bound address of the listener called name.
func (r *running) addr(name string) string {
	for _, l := range r.s.ListenerStatus() {
		if l.Name == name && !l.Draining {
			return l.Address.String()
		}
	}
	return ""
}

// reload writes yaml to the config file and applies it.
func (r *running) reload(t *testing.T, yaml string) error {
	t.Helper()
	if err := os.WriteFile(r.path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return r.s.Reload()
}

type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request on a new connection and returns its response.
func do(t testing.TB, method, url, body string, hdr ...string) response {
	t.Helper()
	r, err := try(method, url, body, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func try(method, url, body string, hdr ...string) (response, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if body == "" {
		req.Body = nil
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: wait.Timeout}).Do(req)
	if err != nil {
		return response{}, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}
