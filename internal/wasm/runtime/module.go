package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
)

// ABIVersion is the proxy-wasm ABI a module declares by exporting an empty function named
// proxy_abi_version_X_Y_Z.
type ABIVersion uint8

// The ABI versions the host serves.
const (
	ABIUnknown ABIVersion = iota
	ABI010                // proxy_abi_version_0_1_0
	ABI020                // proxy_abi_version_0_2_0
	ABI021                // proxy_abi_version_0_2_1
	ABI02100              // proxy_abi_version_0_2_100 (Higress)
)

var abiExports = [...]struct {
	name string
	v    ABIVersion
}{
	{"proxy_abi_version_0_2_100", ABI02100},
	{"proxy_abi_version_0_2_1", ABI021},
	{"proxy_abi_version_0_2_0", ABI020},
	{"proxy_abi_version_0_1_0", ABI010},
}

func (v ABIVersion) String() string {
	for _, a := range abiExports {
		if a.v == v {
			return strings.TrimPrefix(a.name, "proxy_abi_version_")
		}
	}
	return "unknown"
}

// Module is a compiled, validated proxy-wasm module. It is immutable and may be instantiated
// any number of times.
type Module struct {
	ABI ABIVersion
	// Allocator is the export the host calls to get guest memory for what it returns:
	// proxy_on_memory_allocate, or malloc for modules that only have that.
	Allocator string
	Reactor   bool // exports _initialize
	Command   bool // exports _start and not _initialize
	compiled  wazero.CompiledModule
}

var wasmMagic = []byte{0, 'a', 's', 'm'}

// Errors of Compile, for callers (and tests) that tell them apart.
var (
	ErrNotWasm     = errors.New("not a wasm module (no \\0asm header)")
	ErrNoABI       = errors.New("no proxy_abi_version_* export: not a proxy-wasm module, or an unsupported ABI version")
	ErrNoAllocator = errors.New("exports neither proxy_on_memory_allocate nor malloc: the host could not return data to it")
)

// Compile compiles code (through the compilation cache) and checks that it is a proxy-wasm
// module this host can run: a known ABI version, an allocator, a memory.
func (e *Engine) Compile(ctx context.Context, code []byte) (*Module, error) {
	if !bytes.HasPrefix(code, wasmMagic) {
		return nil, fmt.Errorf("wasm: %w", ErrNotWasm)
	}
	cm, err := e.rt.CompileModule(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("wasm: compile: %w", err)
	}
	m := &Module{compiled: cm}
	if err := m.validate(); err != nil {
		_ = cm.Close(ctx)
		return nil, fmt.Errorf("wasm: %w", err)
	}
	return m, nil
}

func (m *Module) validate() error {
	fns := m.compiled.ExportedFunctions()
	for _, a := range abiExports {
		if _, ok := fns[a.name]; ok {
			m.ABI = a.v
			break
		}
	}
	if m.ABI == ABIUnknown {
		return ErrNoABI
	}
	for _, name := range [...]string{"proxy_on_memory_allocate", "malloc"} {
		if f, ok := fns[name]; ok {
			if len(f.ParamTypes()) != 1 || len(f.ResultTypes()) != 1 {
				return fmt.Errorf("%s: want (i32) -> i32, have %d params and %d results", name, len(f.ParamTypes()), len(f.ResultTypes()))
			}
			m.Allocator = name
			break
		}
	}
	if m.Allocator == "" {
		return ErrNoAllocator
	}
	if len(m.compiled.ExportedMemories()) == 0 {
		return errors.New("exports no memory")
	}
	_, m.Reactor = fns["_initialize"]
	_, start := fns["_start"]
	m.Command = start && !m.Reactor
	return nil
}

// HasExport reports whether m exports a function named name.
func (m *Module) HasExport(name string) bool {
	_, ok := m.compiled.ExportedFunctions()[name]
	return ok
}

// ParamCount reports how many parameters the exported function name takes (-1 if absent):
// callbacks changed arity between ABI versions and the caller adapts to the module.
func (m *Module) ParamCount(name string) int {
	f, ok := m.compiled.ExportedFunctions()[name]
	if !ok {
		return -1
	}
	return len(f.ParamTypes())
}

// Close releases the compiled code (instances already made keep working).
func (m *Module) Close(ctx context.Context) error { return m.compiled.Close(ctx) }

// cryptoRand is the WASI random source: Envoy serves random_get from a CSPRNG.
type cryptoRand struct{}

func (cryptoRand) Read(p []byte) (int, error) { return rand.Read(p) }
