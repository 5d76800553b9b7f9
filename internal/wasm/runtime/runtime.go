// Package runtime is the wasm engine under the proxy-wasm host: a wazero runtime with an
// on-disk compilation cache, WASI preview 1 under both of its import names, and the checks a
// module must pass before anything instantiates it.
//
// It knows nothing of proxy-wasm's host functions (package abi) nor of instances and pools
// (package vm); it only compiles, validates and instantiates.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// DefaultMemoryLimitPages caps each instance's linear memory at 128 MiB (64 KiB pages). Go and
// TinyGo plugins start with a few MiB; the cap only stops runaway growth.
const DefaultMemoryLimitPages = 2048

// Config configures an Engine.
type Config struct {
	// CacheDir holds wazero's compiled-code cache, so that a restart does not compile the same
	// module again. Empty means compile in memory only.
	CacheDir string
	// MemoryLimitPages caps every instance's memory (64 KiB pages); 0 means
	// DefaultMemoryLimitPages. wazero applies it per runtime, hence per Engine.
	MemoryLimitPages uint32
	// Interruptible compiles modules so that a callback can be stopped from outside (a deadline
	// or a close). It costs wazero a goroutine per call into the guest, and it is what makes an
	// infinite loop survivable, so it is on unless a benchmark turns it off.
	Uninterruptible bool
}

// Engine compiles and instantiates modules. It is safe for concurrent use.
type Engine struct {
	rt    wazero.Runtime
	cache wazero.CompilationCache
}

// New builds an Engine and instantiates the host modules every proxy-wasm module may import
// besides env: WASI preview 1 under its current and its older name.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	pages := cfg.MemoryLimitPages
	if pages == 0 {
		pages = DefaultMemoryLimitPages
	}
	rc := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(pages).
		WithCloseOnContextDone(!cfg.Uninterruptible)
	e := &Engine{}
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: compilation cache %q: %w", cfg.CacheDir, err)
		}
		e.cache = c
		rc = rc.WithCompilationCache(c)
	}
	e.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, e.rt); err != nil {
		_ = e.Close(ctx)
		return nil, fmt.Errorf("wasm: wasi_snapshot_preview1: %w", err)
	}
	// wasi_unstable is the name older toolchains import; Envoy serves the same functions
	// under both names.
	b := e.rt.NewHostModuleBuilder("wasi_unstable")
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	if _, err := b.Instantiate(ctx); err != nil {
		_ = e.Close(ctx)
		return nil, fmt.Errorf("wasm: wasi_unstable: %w", err)
	}
	return e, nil
}

// Runtime is the underlying wazero runtime, for package abi to add the env host module.
func (e *Engine) Runtime() wazero.Runtime { return e.rt }

// Close releases every module and the compilation cache handle (not the files on disk).
func (e *Engine) Close(ctx context.Context) error {
	err := e.rt.Close(ctx)
	if e.cache != nil {
		err = errors.Join(err, e.cache.Close(ctx))
	}
	return err
}

// InstanceConfig names one instance and gives it its output streams.
type InstanceConfig struct {
	Name           string
	Stdout, Stderr io.Writer
}

// Instantiate makes a new instance of m. The WASI configuration is Envoy's: no arguments, no
// environment, no file system (every path open fails), real clocks and a cryptographic random
// source (wazero's defaults would be fake clocks and a fixed seed), stdout and stderr to the
// writers given (the log, in the host). Reactor modules have their _initialize run; command
// modules (_start only) are not started: a proxy-wasm module is driven by its callbacks.
func (e *Engine) Instantiate(ctx context.Context, m *Module, ic InstanceConfig) (api.Module, error) {
	mc := wazero.NewModuleConfig().
		WithName(ic.Name).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(cryptoRand{}).
		WithStartFunctions() // _initialize is called below, so that its trap is reported as such
	if ic.Stdout != nil {
		mc = mc.WithStdout(ic.Stdout)
	}
	if ic.Stderr != nil {
		mc = mc.WithStderr(ic.Stderr)
	}
	mod, err := e.rt.InstantiateModule(ctx, m.compiled, mc)
	if err != nil {
		return nil, fmt.Errorf("wasm: instantiate: %w", err)
	}
	if m.Reactor {
		if _, err := mod.ExportedFunction("_initialize").Call(ctx); err != nil {
			_ = mod.Close(ctx)
			return nil, fmt.Errorf("wasm: _initialize: %w", err)
		}
	} else if m.Command {
		// A _start module (Envoy's "command" style) runs main once before any callback.
		// One that exits (proc_exit, even with 0) is closed by then and of no further use.
		if _, err := mod.ExportedFunction("_start").Call(ctx); err != nil {
			_ = mod.Close(ctx)
			return nil, fmt.Errorf("wasm: _start: %w", err)
		}
	}
	return mod, nil
}
