package vm_test

import (
	"context"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/wasm/abi"
	"github.com/nuncio-gw/nuncio/internal/wasm/runtime"
	"github.com/nuncio-gw/nuncio/internal/wasm/vm"
	"github.com/nuncio-gw/nuncio/internal/wasm/wasmtest"
)

type discard struct{}

func (discard) Log(abi.LogLevel, string, []byte) {}

// headersPlugin loads the http_headers plugin quietly (its info lines are formatted by the
// guest, but the host drops them) on h.
func headersPlugin(tb testing.TB, h *vm.Host) *vm.Plugin { return quietPlugin(tb, h, "http_headers") }

func quietPlugin(tb testing.TB, h *vm.Host, name string) *vm.Plugin {
	p, _ := loadOn(tb, h, name, vm.Config{
		Config:   []byte(`{"header": "x-wasm-header", "value": "demo-wasm"}`),
		LogLevel: abi.LogWarn, Log: discard{},
	})
	return p
}

var uninterruptible struct {
	h   *vm.Host
	err error
}

// uninterruptibleHost is a host whose modules cannot be stopped by a deadline: wazero then
// calls the guest without its per-call watchdog goroutine, which leaves only the host's
// own work to measure.
func uninterruptibleHost(tb testing.TB) *vm.Host {
	if uninterruptible.h == nil && uninterruptible.err == nil {
		uninterruptible.h, uninterruptible.err = vm.NewHost(context.Background(),
			runtime.Config{CacheDir: cacheDirFor(tb), Uninterruptible: true})
	}
	if uninterruptible.err != nil {
		tb.Fatal(uninterruptible.err)
	}
	return uninterruptible.h
}

// requestHeadersLoop returns a function running proxy_on_request_headers once on a request
// as a codec would hand it over: a fresh copy of the same header block each time.
func requestHeadersLoop(tb testing.TB, p *vm.Plugin) (run func(), done func()) {
	s, err := p.NewStream(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := requestHeaders("user-agent", "bench", "accept", "*/*", "test", "x", "x-request-id", "0123456789")
	var req header.Map
	run = func() {
		req.CopyFrom(tmpl)
		if a := s.OnRequestHeaders(abi.HeadersOf(&req), true); a != vm.ActionContinue {
			tb.Fatalf("action %v (%v)", a, s.Err())
		}
	}
	return run, s.Close
}

// TestRequestHeadersAllocatesNothing pins the host's side of a header callback (header
// pairs to the guest, a header replaced from it, the arena for the new value) to 0
// allocations.
func TestRequestHeadersAllocatesNothing(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("compiles a second engine; the race detector allocates")
	}
	for _, plugin := range []string{"http_headers", "header_rewrite"} {
		run, done := requestHeadersLoop(t, quietPlugin(t, uninterruptibleHost(t), plugin))
		if n := testing.AllocsPerRun(200, run); n != 0 {
			t.Errorf("%s: %v allocations per request-headers callback, want 0", plugin, n)
		}
		done()
	}
}

func BenchmarkRequestHeaders(b *testing.B) {
	for _, bc := range []struct {
		name, plugin string
		host         func(testing.TB) *vm.Host
	}{
		{name: "header_rewrite/deadline", plugin: "header_rewrite", host: testHost},
		{name: "header_rewrite/no-deadline", plugin: "header_rewrite", host: uninterruptibleHost},
		{name: "http_headers/deadline", plugin: "http_headers", host: testHost},
		{name: "http_headers/no-deadline", plugin: "http_headers", host: uninterruptibleHost},
	} {
		b.Run(bc.name, func(b *testing.B) {
			run, done := requestHeadersLoop(b, quietPlugin(b, bc.host(b), bc.plugin))
			defer done()
			b.ReportAllocs()
			for b.Loop() {
				run()
			}
		})
	}
}

// BenchmarkStream is a whole stream through the plugin: context create, request and
// response headers, done, log and delete, instance taken from and given back to the pool.
func BenchmarkStream(b *testing.B) {
	p := headersPlugin(b, testHost(b))
	tmpl := requestHeaders("user-agent", "bench", "test", "x")
	var req, resp header.Map
	b.ReportAllocs()
	for b.Loop() {
		s, err := p.NewStream(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		req.CopyFrom(tmpl)
		s.OnRequestHeaders(abi.HeadersOf(&req), true)
		resp.Reset()
		resp.Status = 200
		s.OnResponseHeaders(abi.HeadersOf(&resp), true)
		s.Close()
	}
}

// BenchmarkColdStart loads the http_headers plugin on a new engine: compile (or read the
// compiled code from the on-disk cache), instantiate, _initialize, on_vm_start and
// on_configure.
func BenchmarkColdStart(b *testing.B) {
	code := wasmtest.Build(b, "http_headers")
	for _, bc := range []struct {
		name  string
		cache bool
	}{
		{name: "no-cache"},
		{name: "cache", cache: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := ""
			if bc.cache {
				dir = b.TempDir()
				warm(b, dir, code)
			}
			b.ReportAllocs()
			for b.Loop() {
				warm(b, dir, code)
			}
		})
	}
}

func warm(b *testing.B, dir string, code []byte) {
	ctx := context.Background()
	h, err := vm.NewHost(ctx, runtime.Config{CacheDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	p, err := h.Load(ctx, code, vm.Config{Name: "cold", Config: []byte(`{"header": "a", "value": "b"}`), Log: discard{}})
	if err != nil {
		b.Fatal(err)
	}
	p.Close()
	_ = h.Close(ctx)
}
