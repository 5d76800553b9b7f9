package admin

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

func TestLogging(t *testing.T) {
	var lv slog.LevelVar
	s := start(t, Options{Source: newTestSource(), LogLevel: &lv})
	tests := []struct {
		name, method, path string
		wantCode           int
		wantBody           string
		wantLevel          slog.Level
	}{
		{name: "show", method: "GET", path: "/logging", wantCode: 200, wantBody: "active loggers:\n  nuncio: info\n", wantLevel: slog.LevelInfo},
		{name: "set debug", method: "POST", path: "/logging?level=debug", wantCode: 200, wantBody: "active loggers:\n  nuncio: debug\n", wantLevel: slog.LevelDebug},
		{name: "set by logger name", method: "POST", path: "/logging?nuncio=warning", wantCode: 200, wantBody: "active loggers:\n  nuncio: warning\n", wantLevel: slog.LevelWarn},
		{name: "slog's name for warning", method: "POST", path: "/logging?level=WARN", wantCode: 200, wantBody: "active loggers:\n  nuncio: warning\n", wantLevel: slog.LevelWarn},
		{name: "trace", method: "POST", path: "/logging?level=trace", wantCode: 200, wantBody: "active loggers:\n  nuncio: trace\n", wantLevel: slog.LevelDebug - 4},
		{name: "off", method: "POST", path: "/logging?level=off", wantCode: 200, wantBody: "active loggers:\n  nuncio: off\n"},
		{name: "post without parameters shows", method: "POST", path: "/logging", wantCode: 200, wantBody: "active loggers:\n  nuncio: off\n"},
		{name: "change by GET refused", method: "GET", path: "/logging?level=info", wantCode: 405},
		{name: "unknown level", method: "POST", path: "/logging?level=loud", wantCode: 404},
		{name: "unknown logger", method: "POST", path: "/logging?upstream=debug", wantCode: 404},
		{name: "set error", method: "POST", path: "/logging?level=error", wantCode: 200, wantBody: "active loggers:\n  nuncio: error\n", wantLevel: slog.LevelError},
		{name: "PUT refused", method: "PUT", path: "/logging?level=info", wantCode: 405, wantLevel: slog.LevelError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, s, tc.method, tc.path)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", r.code, tc.wantCode, r.body)
			}
			if tc.wantBody != "" && r.body != tc.wantBody {
				t.Errorf("body %q, want %q", r.body, tc.wantBody)
			}
			if tc.wantLevel != 0 && lv.Level() != tc.wantLevel {
				t.Errorf("level %v, want %v", lv.Level(), tc.wantLevel)
			}
		})
	}
	// A cross-site page cannot change the level.
	if r := do(t, s, "POST", "/logging?level=debug", "Sec-Fetch-Site", "cross-site"); r.code != 403 {
		t.Errorf("cross-site POST: status %d, want 403", r.code)
	}
}

func TestLoggingUnavailable(t *testing.T) {
	s := start(t, Options{Source: newTestSource()})
	if r := do(t, s, "GET", "/logging"); r.code != 501 {
		t.Errorf("status %d, want 501", r.code)
	}
}

func TestMemory(t *testing.T) {
	s := start(t, Options{Source: newTestSource()})
	r := do(t, s, "GET", "/memory")
	if r.code != 200 || r.header.Get("Content-Type") != contentJSON {
		t.Fatalf("status %d type %q", r.code, r.header.Get("Content-Type"))
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	for _, k := range []string{"allocated", "heap_size", "pageheap_unmapped", "pageheap_free", "total_thread_cache", "total_physical_bytes"} {
		v, ok := m[k]
		if !ok {
			t.Errorf("no %s", k)
			continue
		}
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			t.Errorf("%s = %q: not a uint64 string", k, v)
		}
	}
	if a, _ := strconv.ParseUint(m["allocated"], 10, 64); a == 0 {
		t.Error("allocated is zero")
	}
}

func TestRuntime(t *testing.T) {
	s := start(t, Options{Source: newTestSource()})
	r := do(t, s, "GET", "/runtime")
	jsonEqual(t, r.body, `{"layers":[],"entries":{}}`)
}

type drainingSource struct {
	*testSource
	calls []bool
	err   error
}

func (d *drainingSource) DrainListeners(graceful bool) error {
	d.calls = append(d.calls, graceful)
	return d.err
}

func TestDrainListeners(t *testing.T) {
	src := &drainingSource{testSource: newTestSource()}
	s := start(t, Options{Source: src})
	if r := do(t, s, "GET", "/drain_listeners"); r.code != 405 {
		t.Errorf("GET: status %d", r.code)
	}
	if r := do(t, s, "POST", "/drain_listeners?graceful&inboundonly"); r.code != 200 || r.body != "OK\n" {
		t.Errorf("graceful: status %d body %q", r.code, r.body)
	}
	if r := do(t, s, "POST", "/drain_listeners"); r.code != 200 {
		t.Errorf("immediate: status %d", r.code)
	}
	if len(src.calls) != 2 || !src.calls[0] || src.calls[1] {
		t.Errorf("calls %v, want [true false]", src.calls)
	}
	src.err = errors.New("already stopped")
	if r := do(t, s, "POST", "/drain_listeners"); r.code != 500 || !strings.Contains(r.body, "already stopped") {
		t.Errorf("failure: status %d body %q", r.code, r.body)
	}

	plain := start(t, Options{Source: newTestSource()})
	if r := do(t, plain, "POST", "/drain_listeners"); r.code != 501 {
		t.Errorf("source without drain: status %d, want 501", r.code)
	}
}
