package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/wasm/runtime"
)

// wasmModule assembles a small module: one func type per export kind used here, the given
// exported functions (each an empty body, or returning its i32 argument), a memory, and
// optional imports of WASI functions.
type export struct {
	name   string
	params int // 0: () -> (); 1: (i32) -> i32
}

func section(id byte, body []byte) []byte {
	return append([]byte{id, byte(len(body))}, body...)
}

func name(s string) []byte { return append([]byte{byte(len(s))}, s...) }

func assemble(exports []export, memory bool, wasiImport string) []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	out = append(out, section(1, []byte{2, 0x60, 0, 0, 0x60, 1, 0x7f, 1, 0x7f})...)
	nImports := 0
	if wasiImport != "" {
		// sched_yield: () -> i32 is type... add a third type for it.
		out = out[:8]
		out = append(out, section(1, []byte{3, 0x60, 0, 0, 0x60, 1, 0x7f, 1, 0x7f, 0x60, 0, 1, 0x7f})...)
		imp := []byte{1}
		imp = append(imp, name(wasiImport)...)
		imp = append(imp, name("sched_yield")...)
		imp = append(imp, 0, 2)
		out = append(out, section(2, imp)...)
		nImports = 1
	}
	fn := []byte{byte(len(exports))}
	code := []byte{byte(len(exports))}
	for _, e := range exports {
		if e.params == 0 {
			fn = append(fn, 0)
			code = append(code, 2, 0, 0x0b)
		} else {
			fn = append(fn, 1)
			code = append(code, 4, 0, 0x20, 0, 0x0b) // local.get 0
		}
	}
	out = append(out, section(3, fn)...)
	if memory {
		out = append(out, section(5, []byte{1, 0, 1})...)
	}
	ex := []byte{byte(len(exports))}
	for k, e := range exports {
		ex = append(ex, name(e.name)...)
		ex = append(ex, 0, byte(nImports+k))
	}
	if memory {
		ex[0]++
		ex = append(ex, name("memory")...)
		ex = append(ex, 2, 0)
	}
	out = append(out, section(7, ex)...)
	return append(out, section(10, code)...)
}

func newEngine(t *testing.T, cfg runtime.Config) *runtime.Engine {
	t.Helper()
	e, err := runtime.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

func TestCompileValidates(t *testing.T) {
	e := newEngine(t, runtime.Config{})
	abi021 := export{name: "proxy_abi_version_0_2_1"}
	alloc := export{name: "proxy_on_memory_allocate", params: 1}
	for _, tc := range []struct {
		name    string
		code    []byte
		wantErr error
		wantMsg string
		wantABI runtime.ABIVersion
		alloc   string
		reactor bool
	}{
		{name: "not wasm", code: []byte("GIF89a..."), wantErr: runtime.ErrNotWasm},
		{name: "truncated wasm", code: []byte{0, 'a', 's', 'm', 1, 0}, wantMsg: "compile"},
		{name: "no ABI export", code: assemble([]export{alloc}, true, ""), wantErr: runtime.ErrNoABI},
		{name: "no allocator", code: assemble([]export{abi021}, true, ""), wantErr: runtime.ErrNoAllocator},
		{name: "allocator of the wrong type", code: assemble([]export{abi021, {name: "malloc"}}, true, ""), wantMsg: "malloc: want (i32) -> i32"},
		{name: "no memory", code: assemble([]export{abi021, alloc}, false, ""), wantMsg: "exports no memory"},
		{name: "0.2.1 with proxy_on_memory_allocate", code: assemble([]export{abi021, alloc}, true, ""), wantABI: runtime.ABI021, alloc: "proxy_on_memory_allocate"},
		{name: "0.1.0 with malloc, reactor", code: assemble([]export{{name: "proxy_abi_version_0_1_0"}, {name: "malloc", params: 1}, {name: "_initialize"}}, true, ""),
			wantABI: runtime.ABI010, alloc: "malloc", reactor: true},
		{name: "0.2.0 importing wasi_unstable", code: assemble([]export{{name: "proxy_abi_version_0_2_0"}, alloc}, true, "wasi_unstable"), wantABI: runtime.ABI020, alloc: "proxy_on_memory_allocate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := e.Compile(context.Background(), tc.code)
			if tc.wantErr != nil || tc.wantMsg != "" {
				if err == nil {
					t.Fatal("compiled")
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("error %q, want %v %q", err, tc.wantErr, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.ABI != tc.wantABI || m.Allocator != tc.alloc || m.Reactor != tc.reactor {
				t.Errorf("module %v %s reactor=%v, want %v %s %v", m.ABI, m.Allocator, m.Reactor, tc.wantABI, tc.alloc, tc.reactor)
			}
			// Instantiating links it against the WASI modules and runs _initialize.
			mod, err := e.Instantiate(context.Background(), m, runtime.InstanceConfig{})
			if err != nil {
				t.Fatal(err)
			}
			_ = mod.Close(context.Background())
		})
	}
}

func TestCompilationCacheOnDisk(t *testing.T) {
	dir := t.TempDir()
	code := assemble([]export{{name: "proxy_abi_version_0_2_1"}, {name: "malloc", params: 1}}, true, "")
	for round := range 2 {
		e := newEngine(t, runtime.Config{CacheDir: dir})
		if _, err := e.Compile(context.Background(), code); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		_ = e.Close(context.Background())
		if files := countFiles(t, dir); files == 0 {
			t.Fatalf("round %d: nothing cached in %s", round, dir)
		}
	}
	if _, err := runtime.New(context.Background(), runtime.Config{CacheDir: string([]byte{0})}); err == nil {
		t.Error("a cache directory that cannot exist was accepted")
	}
}

func countFiles(t *testing.T, dir string) int {
	n := 0
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			n += countFiles(t, dir+"/"+e.Name())
		} else {
			n++
		}
	}
	return n
}

func TestABIVersionString(t *testing.T) {
	if got := runtime.ABI021.String(); got != "0_2_1" {
		t.Errorf("ABI021 = %q", got)
	}
	if !bytes.Equal([]byte(runtime.ABIUnknown.String()), []byte("unknown")) {
		t.Error("unknown ABI")
	}
}
